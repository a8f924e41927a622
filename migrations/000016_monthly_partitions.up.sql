-- The task tables, partitioned by month of create_time (UTC): tasks,
-- task_status_changes, task_details and task_subtask_results. Each per-task
-- table carries its task's create_time, so a month is one partition of each
-- and can be exported and detached on its own, and the hot indexes stay the
-- size of a month.
--
-- Every unique key holds task_id (the distribution column on Citus, see
-- docs/scaling.md) and create_time (the partition key). A task's identity
-- is (task_id, create_time); MPS never changes a task's CreateTime.
--
-- Tasks whose CreateTime could not be read (create_time NULL) live in the
-- DEFAULT partition <table>_undated. A row of a month that has no partition
-- yet lands there too, so a write never fails for want of a partition;
-- mps_maintain_partitions() (run by migrate, serve and every sync) makes the
-- months ahead and moves such rows into their month.

CREATE FUNCTION mps_partitioned_tables() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['tasks', 'task_status_changes', 'task_details', 'task_subtask_results'] $$;

-- mps_ensure_partitions makes the monthly partitions of every task table
-- for the months overlapping [lo, hi) (at most three years at a call),
-- moving any rows of those months out of the DEFAULT partition. It runs as
-- the schema's owner (the archiver's role may not create tables; only the
-- roles granted mps_maintain_partitions below may call it through that),
-- with the bounds written in ISO and UTC whatever the session's DateStyle
-- and TimeZone, and holds a lock so that replicas take turns. ATTACH takes
-- a SHARE UPDATE EXCLUSIVE lock on the parent (writes and reads go on) and
-- an ACCESS EXCLUSIVE one on the DEFAULT partition (which the lookups of
-- undated tasks read), held until the caller commits: a moment, once a
-- month.
CREATE FUNCTION mps_ensure_partitions(lo timestamptz, hi timestamptz) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET DateStyle = 'ISO' SET TimeZone = 'UTC' AS $f$
DECLARE
    m timestamp;
    t text;
    part text;
    m_lo timestamptz;
    m_hi timestamptz;
    created integer := 0;
BEGIN
    IF lo IS NULL OR hi IS NULL OR lo >= hi THEN
        RETURN 0;
    END IF;
    IF hi - lo > interval '1100 days' THEN
        RAISE EXCEPTION 'mps_ensure_partitions: % to % is more than three years of months', lo, hi;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('mps_archiver_partitions'));
    m := date_trunc('month', lo AT TIME ZONE 'UTC');
    WHILE m < hi AT TIME ZONE 'UTC' LOOP
        m_lo := m AT TIME ZONE 'UTC';
        m_hi := (m + interval '1 month') AT TIME ZONE 'UTC';
        FOREACH t IN ARRAY mps_partitioned_tables() LOOP
            part := format('%s_y%sm%s', t, to_char(m, 'YYYY'), to_char(m, 'MM'));
            IF to_regclass(format('%I', part)) IS NULL THEN
                -- The parent first, then the DEFAULT partition (one lock order);
                -- EXCLUSIVE on it keeps every write out while its rows of the
                -- month move (a write between the copy and the delete would
                -- be lost), and readers in.
                EXECUTE format('LOCK TABLE %I IN SHARE UPDATE EXCLUSIVE MODE', t);
                EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', t || '_undated');
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, t);
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE create_time >= %L AND create_time < %L RETURNING *)
                                INSERT INTO %I SELECT * FROM moved', t || '_undated', m_lo, m_hi, part);
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t, part, m_lo, m_hi);
                created := created + 1;
            END IF;
        END LOOP;
        m := m + interval '1 month';
    END LOOP;
    RETURN created;
END $f$;

-- mps_maintain_partitions makes the partitions of last month, this month
-- and the next `ahead` months (at most 24), and of any month whose rows
-- wait in a DEFAULT partition. It returns how many partitions it made.
CREATE FUNCTION mps_maintain_partitions(ahead integer DEFAULT 3) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET DateStyle = 'ISO' SET TimeZone = 'UTC' AS $f$
DECLARE
    t text;
    m timestamp;
    created integer := 0;
BEGIN
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        FOR m IN EXECUTE format('SELECT DISTINCT date_trunc(''month'', create_time AT TIME ZONE ''UTC'') FROM %I WHERE create_time IS NOT NULL',
                                t || '_undated') LOOP
            created := created + mps_ensure_partitions(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
        END LOOP;
    END LOOP;
    m := date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month';
    created := created + mps_ensure_partitions(m AT TIME ZONE 'UTC',
        (m + make_interval(months => 2 + least(greatest(ahead, 0), 24))) AT TIME ZONE 'UTC');
    RETURN created;
END $f$;

-- Only the schema's owner, and the roles that write tasks (granted below),
-- may make partitions.
REVOKE EXECUTE ON FUNCTION mps_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION mps_maintain_partitions(integer) FROM PUBLIC;

-- Convert: the old tables step aside, the partitioned ones take their names,
-- rows are copied a month at a time (with a progress notice), then the old
-- tables go. The views that read them are made again after, and tables and
-- views get back the grants they had (the least-privilege roles of
-- deploy/postgres/least-privilege.sql, or any other).
CREATE TEMP TABLE mps_kept_grants ON COMMIT DROP AS
SELECT c.relname::text AS name, a.grantee, a.privilege_type
  FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
 WHERE c.relnamespace = current_schema()::regnamespace AND a.grantee <> c.relowner
   AND c.relname IN ('tasks', 'task_status_changes', 'task_details', 'task_subtask_results',
                     'report_unfinished', 'report_task_audit', 'report_detail_backlog');

DROP VIEW report_unfinished;
DROP VIEW report_task_audit;
DROP VIEW report_detail_backlog;

ALTER TABLE tasks RENAME TO tasks_unpartitioned;
ALTER TABLE task_status_changes RENAME TO task_status_changes_unpartitioned;
ALTER TABLE task_details RENAME TO task_details_unpartitioned;
ALTER TABLE task_subtask_results RENAME TO task_subtask_results_unpartitioned;

CREATE TABLE tasks (LIKE tasks_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (create_time);
CREATE TABLE task_status_changes (LIKE task_status_changes_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    create_time timestamptz) PARTITION BY RANGE (create_time);
CREATE TABLE task_details (LIKE task_details_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    create_time timestamptz) PARTITION BY RANGE (create_time);
CREATE TABLE task_subtask_results (LIKE task_subtask_results_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    create_time timestamptz) PARTITION BY RANGE (create_time);

CREATE TABLE tasks_undated PARTITION OF tasks DEFAULT;
CREATE TABLE task_status_changes_undated PARTITION OF task_status_changes DEFAULT;
CREATE TABLE task_details_undated PARTITION OF task_details DEFAULT;
CREATE TABLE task_subtask_results_undated PARTITION OF task_subtask_results DEFAULT;

ALTER SEQUENCE task_status_changes_id_seq OWNED BY task_status_changes.id;

DO $$
DECLARE
    m timestamp;
    months integer;
    i integer := 0;
BEGIN
    PERFORM mps_maintain_partitions();
    INSERT INTO tasks SELECT * FROM tasks_unpartitioned WHERE create_time IS NULL;
    INSERT INTO task_status_changes SELECT c.*, NULL FROM task_status_changes_unpartitioned c
     WHERE NOT EXISTS (SELECT 1 FROM tasks_unpartitioned t WHERE t.task_id = c.task_id AND t.create_time IS NOT NULL);
    INSERT INTO task_details SELECT d.*, NULL FROM task_details_unpartitioned d
     WHERE NOT EXISTS (SELECT 1 FROM tasks_unpartitioned t WHERE t.task_id = d.task_id AND t.create_time IS NOT NULL);
    INSERT INTO task_subtask_results SELECT s.*, NULL FROM task_subtask_results_unpartitioned s
     WHERE NOT EXISTS (SELECT 1 FROM tasks_unpartitioned t WHERE t.task_id = s.task_id AND t.create_time IS NOT NULL);
    -- The months that hold tasks, and no others (an archive with one task
    -- of 1970 gets one partition for it, not 680 empty ones).
    CREATE TEMP TABLE mps_months ON COMMIT DROP AS
    SELECT DISTINCT date_trunc('month', create_time AT TIME ZONE 'UTC') AS m
      FROM tasks_unpartitioned WHERE create_time IS NOT NULL;
    SELECT count(*) INTO months FROM mps_months;
    FOR m IN SELECT mps_months.m FROM mps_months ORDER BY 1 LOOP
        PERFORM mps_ensure_partitions(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
        INSERT INTO tasks SELECT * FROM tasks_unpartitioned
         WHERE create_time >= m AT TIME ZONE 'UTC' AND create_time < (m + interval '1 month') AT TIME ZONE 'UTC';
        INSERT INTO task_status_changes SELECT c.*, t.create_time
          FROM task_status_changes_unpartitioned c JOIN tasks_unpartitioned t USING (task_id)
         WHERE t.create_time >= m AT TIME ZONE 'UTC' AND t.create_time < (m + interval '1 month') AT TIME ZONE 'UTC';
        INSERT INTO task_details SELECT d.*, t.create_time
          FROM task_details_unpartitioned d JOIN tasks_unpartitioned t USING (task_id)
         WHERE t.create_time >= m AT TIME ZONE 'UTC' AND t.create_time < (m + interval '1 month') AT TIME ZONE 'UTC';
        INSERT INTO task_subtask_results SELECT s.*, t.create_time
          FROM task_subtask_results_unpartitioned s JOIN tasks_unpartitioned t USING (task_id)
         WHERE t.create_time >= m AT TIME ZONE 'UTC' AND t.create_time < (m + interval '1 month') AT TIME ZONE 'UTC';
        i := i + 1;
        RAISE NOTICE 'partitions: copied % (% of % months)', to_char(m, 'YYYY-MM'), i, months;
    END LOOP;
END $$;

-- The detail queue names the task's create time too, so that an outcome
-- is stored into its month without a lookup in every month.
ALTER TABLE task_detail_queue ADD COLUMN create_time timestamptz;
UPDATE task_detail_queue q SET create_time = t.create_time FROM tasks_unpartitioned t WHERE t.task_id = q.task_id;

DROP TABLE tasks_unpartitioned, task_status_changes_unpartitioned, task_details_unpartitioned,
    task_subtask_results_unpartitioned;

-- Keys and indexes, built after the copy (faster than row by row). NULLS
-- NOT DISTINCT: an undated task is still one row.
ALTER TABLE tasks ADD CONSTRAINT tasks_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time);
ALTER TABLE task_status_changes ADD CONSTRAINT task_status_changes_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time, id);
ALTER TABLE task_details ADD CONSTRAINT task_details_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time);
ALTER TABLE task_subtask_results ADD CONSTRAINT task_subtask_results_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time, ordinal);
CREATE INDEX task_status_changes_task_id_idx ON task_status_changes (task_id, observed_at);
CREATE INDEX tasks_create_time_idx ON tasks (create_time);
CREATE INDEX tasks_status_idx ON tasks (status) WHERE status <> 'FINISH';
CREATE INDEX tasks_task_type_idx ON tasks (task_type, create_time);
CREATE INDEX task_details_outcome_idx ON task_details (outcome) WHERE outcome <> 'succeeded';
-- The outcomes found expired, by when: the last 7 days' (status, the
-- alerts' last expiry) cost a probe a month, not a scan of years of them.
CREATE INDEX task_details_expired_idx ON task_details (fetched_at) WHERE outcome = 'expired';

-- The rollup triggers of migration 15, on the new tables, now finding an
-- outcome's task by (task_id, create_time): the lookup of each is pruned
-- to the task's month as it runs.
CREATE OR REPLACE FUNCTION mps_rollup_task_source(op text, cols text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $f$ SELECT format($q$
SELECT %s, x.sgn, t.create_time, t.task_type
  FROM (%s) x
 CROSS JOIN LATERAL (
       SELECT t.create_time, t.task_type FROM tasks t
        WHERE t.task_id = x.task_id AND t.create_time = x.create_time
       UNION ALL
       SELECT t.create_time, t.task_type FROM tasks t
        WHERE x.create_time IS NULL AND t.task_id = x.task_id AND t.create_time IS NULL) t$q$,
    cols, mps_rollup_delta_source(op)) $f$;
SELECT mps_rollup_make_triggers();

SELECT mps_rollup_attach_triggers();

-- The raw sources of `rollups check` and rebuilds join the same way.
CREATE OR REPLACE FUNCTION mps_rollup_raw_source(rollup text, lo timestamptz, hi timestamptz, nulls boolean) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET DateStyle = 'ISO' SET TimeZone = 'UTC'
    AS $f$ SELECT format(CASE
        WHEN rollup IN ('rollup_daily_tasks', 'rollup_daily_durations', 'rollup_monthly_durations', 'rollup_daily_subtasks') THEN
            'SELECT *, 1 AS sgn FROM tasks t WHERE %s'
        WHEN rollup IN ('rollup_daily_outcomes', 'rollup_daily_error_codes') THEN
            'SELECT x.task_id, x.outcome, x.err_code, x.err_code_ext, 1 AS sgn, t.create_time, t.task_type
               FROM task_details x JOIN tasks t ON t.task_id = x.task_id AND t.create_time IS NOT DISTINCT FROM x.create_time
              WHERE %s'
        ELSE
            'SELECT x.kind, x.status, x.err_code, x.err_code_ext, 1 AS sgn, t.create_time, t.task_type
               FROM task_subtask_results x JOIN tasks t ON t.task_id = x.task_id AND t.create_time IS NOT DISTINCT FROM x.create_time
              WHERE %s' END,
        format('(t.create_time >= %L AND t.create_time < %L%s)', lo, hi,
               CASE WHEN nulls THEN ' OR t.create_time IS NULL' ELSE '' END)) $f$;


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
    -- Whoever may write tasks (the app role) makes the coming months.
    FOR g IN SELECT DISTINCT grantee FROM mps_kept_grants
              WHERE name = 'tasks' AND privilege_type = 'INSERT' AND grantee <> 0 LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION mps_maintain_partitions(integer) TO %s', g.grantee::regrole::text);
    END LOOP;
END $$;
