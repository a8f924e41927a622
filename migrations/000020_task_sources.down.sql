-- Back to migration 19: one source. Image tasks stay in tasks as rows
-- like any other (task_type 'ImageTask'); which list showed them goes.
-- Their proof-log leaves named their source: verify reports those tasks
-- until the archive is migrated up again.
CREATE OR REPLACE FUNCTION mps_proof_task(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT 'task' AS fact, t.task_id, t.create_time, t.status,
               encode(sha256(convert_to(row_to_json(r)::text, 'UTF8')), 'hex') AS row_sha256
          FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id,
                       t.last_changed_run_id, t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) r) x $$;

CREATE OR REPLACE FUNCTION mps_proof_task_row(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
               t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
               t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) x $$;

CREATE TEMP TABLE mps_kept_grants ON COMMIT DROP AS
SELECT a.grantee, a.privilege_type
  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
 WHERE c.oid = 'report_unfinished'::regclass AND a.grantee <> c.relowner;
DROP VIEW report_unfinished;
CREATE VIEW report_unfinished AS
SELECT task_id,
       task_type,
       status,
       create_time,
       begin_process_time,
       extract(epoch FROM now() - CASE WHEN status = 'PROCESSING' THEN coalesce(begin_process_time, create_time) ELSE create_time END) AS in_state_s,
       last_changed_at,
       gone_at
  FROM tasks
 WHERE status <> 'FINISH';
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM mps_kept_grants LOOP
        EXECUTE format('GRANT %s ON report_unfinished TO %s', g.privilege_type,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;

DROP TABLE IF EXISTS sync_run_sources;
ALTER TABLE tasks DROP COLUMN IF EXISTS source;
