-- Task sources: MPS lists tasks through more than one action
-- (DescribeTasks for media tasks; DescribeImageTasks, since 2026-07, for
-- image tasks). They share one table: a task is a task, whichever list
-- showed it, and every report, view, rollup and dashboard sees both (image
-- tasks as task_type 'ImageTask'). A task listed by both is one row, the
-- image list's record kept (see WritePage).
--
-- A constant default and no constraint to validate: adding the column
-- rewrites and scans nothing. (The in-flight tasks an incremental run
-- resolves per source are found by tasks_status_idx, as before.)
ALTER TABLE tasks ADD COLUMN source text NOT NULL DEFAULT 'media';

-- How each source's drain went, per run: a source that fails is recorded
-- as failed (and so is the run) while the others' pages stay committed; a
-- source the API does not serve is recorded as skipped.
CREATE TABLE sync_run_sources (
    run_id          bigint      NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    source          text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('succeeded', 'failed', 'skipped')),
    kind            text        NOT NULL,
    drained         text[]      NOT NULL DEFAULT '{}',
    error           text,
    tasks_seen      bigint      NOT NULL DEFAULT 0,
    tasks_inserted  bigint      NOT NULL DEFAULT 0,
    tasks_updated   bigint      NOT NULL DEFAULT 0,
    list_requests   bigint      NOT NULL DEFAULT 0,
    detail_requests bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, source)
);
CREATE INDEX sync_run_sources_source_idx ON sync_run_sources (source, run_id) WHERE status = 'succeeded';

-- Whoever may write runs may write their sources (the least-privilege
-- roles of deploy/postgres/least-privilege.sql, or any other).
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT a.grantee, a.privilege_type
               FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
              WHERE c.oid = 'sync_runs'::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON sync_run_sources TO %s', g.privilege_type,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;

-- report_unfinished says which list each task is on (a column more, at
-- the end: the view's columns stay).
CREATE OR REPLACE VIEW report_unfinished AS
SELECT task_id,
       task_type,
       status,
       create_time,
       begin_process_time,
       extract(epoch FROM now() - CASE WHEN status = 'PROCESSING' THEN coalesce(begin_process_time, create_time) ELSE create_time END) AS in_state_s,
       last_changed_at,
       gone_at,
       source
  FROM tasks
 WHERE status <> 'FINISH';

-- The proof log: a task's row names its source when it is not media, so
-- that every leaf written before this migration still matches its row.
CREATE OR REPLACE FUNCTION mps_proof_task_row(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT CASE WHEN t.source = 'media' THEN row_to_json(x)::text ELSE row_to_json(y)::text END
  FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
               t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
               t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) x,
       (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
               t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
               t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256, t.source) y $$;

CREATE OR REPLACE FUNCTION mps_proof_task(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT 'task' AS fact, t.task_id, t.create_time, t.status,
               encode(sha256(convert_to(CASE WHEN t.source = 'media' THEN row_to_json(r)::text ELSE row_to_json(r2)::text END,
                                        'UTF8')), 'hex') AS row_sha256
          FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id,
                       t.last_changed_run_id, t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) r,
               (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id,
                       t.last_changed_run_id, t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256, t.source) r2) x $$;
