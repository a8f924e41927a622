-- Lifecycle order of MPS task statuses; a task's archived status never moves
-- to a lower rank.
CREATE FUNCTION mps_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE status WHEN 'WAITING' THEN 1 WHEN 'PROCESSING' THEN 2 WHEN 'FINISH' THEN 3 ELSE 0 END $$;

-- One row per MPS TaskId, as last seen. raw keeps the API's record verbatim.
CREATE TABLE tasks (
    task_id             text        PRIMARY KEY,
    task_type           text        NOT NULL DEFAULT '',
    sub_task_types      text[]      NOT NULL DEFAULT '{}',
    status              text        NOT NULL
                        CHECK (status IN ('WAITING', 'PROCESSING', 'FINISH')),
    create_time         timestamptz,
    begin_process_time  timestamptz,
    finish_time         timestamptz,
    raw                 jsonb       NOT NULL,
    -- The status the task had when the archive first saw it; later moves
    -- are rows of task_status_changes.
    first_status        text        NOT NULL,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_changed_at     timestamptz NOT NULL DEFAULT now(),
    first_seen_run_id   bigint,
    last_changed_run_id bigint
);
