-- Back to one table each, keyed by task_id alone: every partition's rows
-- copied into plain tables (the per-task tables lose their create_time).
CREATE TEMP TABLE mps_kept_grants ON COMMIT DROP AS
SELECT c.relname::text AS name, a.grantee, a.privilege_type
  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
 WHERE c.relnamespace = current_schema()::regnamespace AND a.grantee <> c.relowner
   AND c.relname IN ('tasks', 'task_status_changes', 'task_details', 'task_subtask_results',
                     'report_unfinished', 'report_task_audit', 'report_detail_backlog');

DROP VIEW report_unfinished;
DROP VIEW report_task_audit;
DROP VIEW report_detail_backlog;

CREATE TABLE tasks_plain (LIKE tasks INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE task_status_changes_plain (LIKE task_status_changes INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE task_details_plain (LIKE task_details INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
CREATE TABLE task_subtask_results_plain (LIKE task_subtask_results INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO tasks_plain SELECT * FROM tasks;
INSERT INTO task_status_changes_plain SELECT * FROM task_status_changes;
INSERT INTO task_details_plain SELECT * FROM task_details;
INSERT INTO task_subtask_results_plain SELECT * FROM task_subtask_results;
ALTER TABLE task_status_changes_plain DROP COLUMN create_time;
ALTER TABLE task_details_plain DROP COLUMN create_time;
ALTER TABLE task_subtask_results_plain DROP COLUMN create_time;
ALTER SEQUENCE task_status_changes_id_seq OWNED BY task_status_changes_plain.id;

DROP TABLE tasks, task_status_changes, task_details, task_subtask_results;

-- Migration 15's versions of what 16 replaced, and its trigger functions
-- written again from them.
CREATE OR REPLACE FUNCTION mps_rollup_task_source(op text, cols text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $f$ SELECT format('SELECT %s, x.sgn, t.create_time, t.task_type FROM (%s) x JOIN tasks t ON t.task_id = x.task_id',
                         cols, mps_rollup_delta_source(op)) $f$;

CREATE OR REPLACE FUNCTION mps_rollup_raw_source(rollup text, lo timestamptz, hi timestamptz, nulls boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET DateStyle = 'ISO' SET TimeZone = 'UTC'
    AS $f$ SELECT format(CASE
        WHEN rollup IN ('rollup_daily_tasks', 'rollup_daily_durations', 'rollup_monthly_durations', 'rollup_daily_subtasks') THEN
            'SELECT *, 1 AS sgn FROM tasks t WHERE %s'
        WHEN rollup IN ('rollup_daily_outcomes', 'rollup_daily_error_codes') THEN
            'SELECT x.task_id, x.outcome, x.err_code, x.err_code_ext, 1 AS sgn, t.create_time, t.task_type
               FROM task_details x JOIN tasks t ON t.task_id = x.task_id WHERE %s'
        ELSE
            'SELECT x.kind, x.status, x.err_code, x.err_code_ext, 1 AS sgn, t.create_time, t.task_type
               FROM task_subtask_results x JOIN tasks t ON t.task_id = x.task_id WHERE %s' END,
        format('(t.create_time >= %L AND t.create_time < %L%s)', lo, hi,
               CASE WHEN nulls THEN ' OR t.create_time IS NULL' ELSE '' END)) $f$;

SELECT mps_rollup_make_triggers();
ALTER TABLE task_detail_queue DROP COLUMN create_time;

DROP FUNCTION mps_maintain_partitions(integer);
DROP FUNCTION mps_ensure_partitions(timestamptz, timestamptz);
DROP FUNCTION mps_partitioned_tables();

ALTER TABLE tasks_plain RENAME TO tasks;
ALTER TABLE task_status_changes_plain RENAME TO task_status_changes;
ALTER TABLE task_details_plain RENAME TO task_details;
ALTER TABLE task_subtask_results_plain RENAME TO task_subtask_results;

ALTER TABLE tasks ADD PRIMARY KEY (task_id);
ALTER TABLE task_status_changes ADD PRIMARY KEY (id);
ALTER TABLE task_details ADD PRIMARY KEY (task_id);
ALTER TABLE task_subtask_results ADD PRIMARY KEY (task_id, ordinal);
CREATE INDEX task_status_changes_task_id_idx ON task_status_changes (task_id, observed_at);
CREATE INDEX tasks_create_time_idx ON tasks (create_time);
CREATE INDEX tasks_status_idx ON tasks (status) WHERE status <> 'FINISH';
CREATE INDEX tasks_task_type_idx ON tasks (task_type, create_time);
CREATE INDEX task_details_outcome_idx ON task_details (outcome) WHERE outcome <> 'succeeded';

SELECT mps_rollup_attach_triggers();

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

CREATE VIEW report_task_audit AS
SELECT task_id, first_seen_at AS observed_at, first_seen_run_id AS run_id,
       NULL::text AS from_status, first_status AS to_status
  FROM tasks
UNION ALL
SELECT task_id, observed_at, run_id, from_status, to_status
  FROM task_status_changes;

CREATE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_details
         WHERE outcome = 'expired' AND err_code = 'gave_up' AND fetched_at > now() - interval '7 days') AS gave_up,
       (SELECT coalesce(sum(tasks), 0)::bigint FROM rollup_daily_outcomes WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;

DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT * FROM mps_kept_grants LOOP
        EXECUTE format('GRANT %s ON %I TO %s', g.privilege_type, g.name,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;
