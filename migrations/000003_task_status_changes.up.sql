-- Every status transition the archiver observed, with the run that saw it.
-- from_status is NULL when the task was first seen.
CREATE TABLE task_status_changes (
    id          bigserial   PRIMARY KEY,
    task_id     text        NOT NULL,
    run_id      bigint,
    from_status text,
    to_status   text        NOT NULL,
    observed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX task_status_changes_task_id_idx ON task_status_changes (task_id, observed_at);
