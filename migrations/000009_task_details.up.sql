-- How each task ended, read by DescribeTaskDetail before MPS forgets it
-- (7 days at best, 3 on the international site). Documented column by
-- column in docs/reporting.md.

-- The work queue: one row per FINISH task whose detail is still to be
-- read. Workers in any process claim rows oldest deadline first with
-- FOR UPDATE SKIP LOCKED and a lease; the row is deleted in the same
-- transaction that stores the outcome, so a crash loses nothing and a
-- detail is stored once.
CREATE TABLE task_detail_queue (
    task_id       text        PRIMARY KEY,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    -- create_time + details.retention: what the archiver plans and alerts by.
    deadline      timestamptz NOT NULL,
    -- create_time + 168 h: after this the API cannot have the detail.
    give_up_at    timestamptz NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    not_before    timestamptz NOT NULL DEFAULT '-infinity',
    leased_until  timestamptz,
    last_error    text
);
CREATE INDEX task_detail_queue_deadline_idx ON task_detail_queue (deadline);

-- One row per task whose detail was captured (or is known lost).
CREATE TABLE task_details (
    task_id      text        PRIMARY KEY,
    fetched_at   timestamptz NOT NULL DEFAULT now(),
    outcome      text        NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'expired')),
    -- The first failure found, task-level first.
    err_code     text,
    err_code_ext text,
    message      text,
    -- What the failure rule could not decide (a sub-task still PROCESSING
    -- on a FINISH task, an unknown container type), kept for audit.
    ambiguities  text[]      NOT NULL DEFAULT '{}',
    -- The detail with every secret-like field replaced; NULL when expired.
    raw          jsonb,
    raw_truncated boolean    NOT NULL DEFAULT false,
    raw_bytes    integer     NOT NULL DEFAULT 0
);
CREATE INDEX task_details_outcome_idx ON task_details (outcome) WHERE outcome <> 'succeeded';

-- One row per sub-task result of a captured detail.
CREATE TABLE task_subtask_results (
    task_id      text    NOT NULL,
    ordinal      integer NOT NULL,
    kind         text    NOT NULL,
    status       text    NOT NULL DEFAULT '',
    err_code     text,
    err_code_ext text,
    message      text,
    definition   text,
    output_path  text,
    PRIMARY KEY (task_id, ordinal)
);

-- Tasks already archived as FINISH and still inside the API's window get
-- their detail read too.
INSERT INTO task_detail_queue (task_id, deadline, give_up_at)
SELECT task_id, create_time + interval '72 hours', create_time + interval '168 hours'
  FROM tasks
 WHERE status = 'FINISH' AND create_time > now() - interval '168 hours'
ON CONFLICT DO NOTHING;
