-- Daily rollups, kept in step with the archive by statement-level triggers:
-- every write to tasks, task_details or task_subtask_results adds what it
-- changed (new rows counted +1, replaced rows -1) in the same transaction,
-- so a rollup is never stale, a crash never counts twice, and two replicas
-- serialise on the rollup rows they both touch. The report_* views below
-- read these tables, so a report over a year reads 365 days of rows, not
-- every task of the year.
--
-- A day is the UTC day of create_time; tasks without a create_time count on
-- day '-infinity' (kept for the totals, left out of every per-day view).

CREATE FUNCTION mps_rollup_day(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce((t AT TIME ZONE 'UTC')::date, '-infinity'::date) $$;

-- Durations are kept as a DDSketch: a log-bucketed histogram with relative
-- error alpha = 0.02 (gamma = 1.02/0.98). A value x > 1 ms falls in bucket
-- ceil(log_gamma(x)) and is read back as 2*gamma^k/(1+gamma), within 2% of
-- x; |x| <= 1 ms counts as 0; negatives (clock skew) mirror the positives.
-- Sketches merge by adding counts, so a year's p90 is 365 days' buckets.
CREATE FUNCTION mps_sketch_sign(x double precision) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN x > 0.001 THEN 1 WHEN x < -0.001 THEN -1 ELSE 0 END::smallint $$;

CREATE FUNCTION mps_sketch_bucket(x double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN abs(x) <= 0.001 THEN 0 ELSE ceil(ln(abs(x)) / ln(1.02 / 0.98))::integer END $$;

CREATE FUNCTION mps_sketch_value(sign smallint, bucket integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sign * 2 * power((1.02 / 0.98)::double precision, bucket) / (1 + 1.02 / 0.98)::double precision $$;

CREATE TABLE rollup_daily_tasks (
    day       date   NOT NULL,
    task_type text   NOT NULL,
    status    text   NOT NULL,
    tasks     bigint NOT NULL,
    started   bigint NOT NULL,  -- with a begin_process_time
    finished  bigint NOT NULL,  -- with a finish_time
    PRIMARY KEY (day, task_type, status)
);

CREATE TABLE rollup_daily_durations (
    day       date     NOT NULL,
    task_type text     NOT NULL,
    measure   text     NOT NULL CHECK (measure IN ('queue', 'processing')),
    sign      smallint NOT NULL,
    bucket    integer  NOT NULL,
    n         bigint   NOT NULL,
    PRIMARY KEY (day, task_type, measure, sign, bucket)
);

-- A month's duration sketch: the merge of its days before the fold horizon
-- (mps_rollup_fold, below), so that a report by month reads a sketch a
-- month, not thirty. The days after the horizon (the last eight, which the
-- API still lists and outcomes still reach) are read from the daily table.
CREATE TABLE rollup_monthly_durations (
    month     date     NOT NULL,  -- the first day of the month (UTC)
    task_type text     NOT NULL,
    measure   text     NOT NULL CHECK (measure IN ('queue', 'processing')),
    sign      smallint NOT NULL,
    bucket    integer  NOT NULL,
    n         bigint   NOT NULL,
    PRIMARY KEY (month, task_type, measure, sign, bucket)
);

-- The fold horizon: rollup_monthly_durations holds every dated day before
-- it. One row; it only moves forward.
CREATE TABLE rollup_fold (
    horizon date NOT NULL,
    one      boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO rollup_fold (horizon) VALUES ('-infinity');

CREATE TABLE rollup_daily_subtasks (
    day           date        NOT NULL,
    task_type     text        NOT NULL,
    sub_task_type text        NOT NULL,
    tasks         bigint      NOT NULL,
    -- Bounds of the create_time of the tasks counted (only ever widened).
    first_created timestamptz,
    last_created  timestamptz,
    PRIMARY KEY (day, task_type, sub_task_type)
);

CREATE TABLE rollup_daily_outcomes (
    day       date   NOT NULL,
    task_type text   NOT NULL,
    outcome   text   NOT NULL,
    tasks     bigint NOT NULL,
    PRIMARY KEY (day, task_type, outcome)
);

CREATE TABLE rollup_daily_error_codes (
    day           date        NOT NULL,
    task_type     text        NOT NULL,
    error_code    text        NOT NULL,
    tasks         bigint      NOT NULL,
    first_created timestamptz,
    last_created  timestamptz,
    PRIMARY KEY (day, task_type, error_code)
);

CREATE TABLE rollup_daily_subtask_outcomes (
    day       date   NOT NULL,
    task_type text   NOT NULL,
    kind      text   NOT NULL,
    subtasks  bigint NOT NULL,
    failed    bigint NOT NULL,
    PRIMARY KEY (day, task_type, kind)
);

-- The duration sketches of a source's rows, per period (a day, or a month
-- of the days before the fold horizon).
CREATE FUNCTION mps_rollup_durations_select(period text, period_name text, src text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $f$ SELECT format($q$
SELECT %s AS %I, task_type, m.measure, mps_sketch_sign(m.v) AS sign,
       mps_sketch_bucket(m.v) AS bucket, sum(sgn)::bigint AS n
  FROM (%s) d
 CROSS JOIN LATERAL (VALUES ('queue', extract(epoch FROM begin_process_time - create_time)::double precision),
                            ('processing', extract(epoch FROM finish_time - begin_process_time)::double precision)) AS m(measure, v)
 WHERE m.v IS NOT NULL
 GROUP BY 1, 2, 3, 4, 5$q$, period, period_name, src) $f$;

-- mps_rollup_select is the one definition of each rollup: the grouped
-- SELECT over a source of rows carrying sgn (+1 counted, -1 uncounted).
-- The triggers run it over their transition tables, the backfill and
-- `mps-archiver rollups check` over raw rows. A tasks source has the
-- columns of tasks; an outcome source task_id, outcome, err_code,
-- err_code_ext, create_time, task_type; a sub-task source kind, status,
-- err_code, err_code_ext, create_time, task_type.
CREATE FUNCTION mps_rollup_select(rollup text, src text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $f$ SELECT CASE rollup
WHEN 'rollup_daily_tasks' THEN format($q$
SELECT mps_rollup_day(create_time) AS day, task_type, status, sum(sgn)::bigint AS tasks,
       coalesce(sum(sgn) FILTER (WHERE begin_process_time IS NOT NULL), 0)::bigint AS started,
       coalesce(sum(sgn) FILTER (WHERE finish_time IS NOT NULL), 0)::bigint AS finished
  FROM (%s) d
 GROUP BY 1, 2, 3$q$, src)
WHEN 'rollup_daily_durations' THEN mps_rollup_durations_select('mps_rollup_day(create_time)', 'day', src)
WHEN 'rollup_monthly_durations' THEN mps_rollup_durations_select(
    $q$date_trunc('month', mps_rollup_day(create_time)::timestamp)::date$q$, 'month',
    format($q$SELECT * FROM (%s) f WHERE f.create_time < (SELECT horizon FROM rollup_fold)::timestamp AT TIME ZONE 'UTC'$q$, src))
WHEN 'rollup_daily_subtasks' THEN format($q$
SELECT mps_rollup_day(create_time) AS day, task_type, s.sub_task_type, sum(sgn)::bigint AS tasks,
       min(create_time) FILTER (WHERE sgn > 0) AS first_created,
       max(create_time) FILTER (WHERE sgn > 0) AS last_created
  FROM (%s) d
 CROSS JOIN LATERAL unnest(sub_task_types) AS s(sub_task_type)
 GROUP BY 1, 2, 3$q$, src)
WHEN 'rollup_daily_outcomes' THEN format($q$
SELECT mps_rollup_day(create_time) AS day, task_type, outcome, sum(sgn)::bigint AS tasks
  FROM (%s) d
 GROUP BY 1, 2, 3$q$, src)
WHEN 'rollup_daily_error_codes' THEN format($q$
SELECT mps_rollup_day(create_time) AS day, task_type, coalesce(err_code_ext, err_code, '(none)') AS error_code,
       sum(sgn)::bigint AS tasks,
       min(create_time) FILTER (WHERE sgn > 0) AS first_created,
       max(create_time) FILTER (WHERE sgn > 0) AS last_created
  FROM (%s) d
 WHERE outcome = 'failed'
 GROUP BY 1, 2, 3$q$, src)
WHEN 'rollup_daily_subtask_outcomes' THEN format($q$
SELECT mps_rollup_day(create_time) AS day, task_type, kind, sum(sgn)::bigint AS subtasks,
       coalesce(sum(sgn) FILTER (WHERE status = 'FAIL' OR coalesce(err_code, '0') <> '0'
                                    OR coalesce(err_code_ext, '') NOT IN ('', 'SUCCESS')), 0)::bigint AS failed
  FROM (%s) d
 GROUP BY 1, 2, 3$q$, src)
END $f$;

-- mps_rollup_keys names each rollup's key columns and counters.
CREATE FUNCTION mps_rollup_keys(rollup text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE rollup
        WHEN 'rollup_daily_tasks' THEN ARRAY['day', 'task_type', 'status']
        WHEN 'rollup_daily_durations' THEN ARRAY['day', 'task_type', 'measure', 'sign', 'bucket']
        WHEN 'rollup_monthly_durations' THEN ARRAY['month', 'task_type', 'measure', 'sign', 'bucket']
        WHEN 'rollup_daily_subtasks' THEN ARRAY['day', 'task_type', 'sub_task_type']
        WHEN 'rollup_daily_outcomes' THEN ARRAY['day', 'task_type', 'outcome']
        WHEN 'rollup_daily_error_codes' THEN ARRAY['day', 'task_type', 'error_code']
        WHEN 'rollup_daily_subtask_outcomes' THEN ARRAY['day', 'task_type', 'kind'] END $$;

CREATE FUNCTION mps_rollup_counters(rollup text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE rollup
        WHEN 'rollup_daily_tasks' THEN ARRAY['tasks', 'started', 'finished']
        WHEN 'rollup_daily_durations' THEN ARRAY['n']
        WHEN 'rollup_monthly_durations' THEN ARRAY['n']
        WHEN 'rollup_daily_subtasks' THEN ARRAY['tasks']
        WHEN 'rollup_daily_outcomes' THEN ARRAY['tasks']
        WHEN 'rollup_daily_error_codes' THEN ARRAY['tasks']
        WHEN 'rollup_daily_subtask_outcomes' THEN ARRAY['subtasks', 'failed'] END $$;

-- mps_rollup_upsert is the statement that adds a source's deltas to a
-- rollup: groups whose counters net to zero are skipped, and rows are
-- locked in key order so concurrent writers cannot deadlock.
CREATE FUNCTION mps_rollup_upsert(rollup text, src text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $f$
DECLARE
    keys text[] := mps_rollup_keys(rollup);
    counters text[] := mps_rollup_counters(rollup);
    sets text;
    nonzero text;
    bounds text := '';
BEGIN
    SELECT string_agg(format('%1$I = r.%1$I + EXCLUDED.%1$I', c), ', '),
           string_agg(format('%I <> 0', c), ' OR ')
      INTO sets, nonzero
      FROM unnest(counters) AS c;
    IF rollup IN ('rollup_daily_subtasks', 'rollup_daily_error_codes') THEN
        bounds := ', first_created = least(r.first_created, EXCLUDED.first_created),'
               || ' last_created = greatest(r.last_created, EXCLUDED.last_created)';
    END IF;
    RETURN format($q$
INSERT INTO %1$I AS r
SELECT * FROM (%2$s) s WHERE %3$s
 ORDER BY %4$s
    ON CONFLICT (%4$s) DO UPDATE SET %5$s%6$s$q$,
        rollup, mps_rollup_select(rollup, src), nonzero,
        array_to_string(keys, ', '), sets, bounds);
END $f$;

-- The sources the triggers read: their transition tables, signed.
CREATE FUNCTION mps_rollup_delta_source(op text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE op
        WHEN 'INSERT' THEN 'SELECT *, 1 AS sgn FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT *, -1 AS sgn FROM old_rows'
        ELSE 'SELECT *, 1 AS sgn FROM new_rows UNION ALL SELECT *, -1 AS sgn FROM old_rows' END $$;

-- mps_rollup_lock serialises rollup maintenance, until the transaction
-- ends. One statement can fire two triggers (an INSERT … ON CONFLICT fires
-- the INSERT and the UPDATE one), each locking rollup rows in key order of
-- its own: without one lock first, two writers could each hold a row the
-- other's second trigger wants. Writers are few (one sync holds the run
-- lock; detail workers commit one outcome at a time), and the lock is held
-- from the trigger to the commit only.
CREATE FUNCTION mps_rollup_lock() RETURNS void
    LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7885929586556365932) $$;  -- "mps-roll"

-- mps_rollup_task_source: an outcome's or sub-task's changed rows (cols of
-- the transition tables, signed) with their task's create_time and type.
CREATE FUNCTION mps_rollup_task_source(op text, cols text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $f$ SELECT format('SELECT %s, x.sgn, t.create_time, t.task_type FROM (%s) x JOIN tasks t ON t.task_id = x.task_id',
                         cols, mps_rollup_delta_source(op)) $f$;

-- mps_rollup_make_triggers writes the trigger functions, one per table and
-- operation, from the definitions above: their statements are static SQL,
-- planned once per session (a statement planned at every page write cost
-- a third of a cold sync's speed), yet each rollup is defined only in
-- mps_rollup_select. Run again when a definition or a source changes.
CREATE FUNCTION mps_rollup_make_triggers() RETURNS void
    LANGUAGE plpgsql AS $m$
DECLARE
    op text;
    rows_of text;
    moved text;
    moved_src text := $q$
SELECT x.*, m.create_time, m.task_type, m.sgn
  FROM %s x
  JOIN (SELECT task_id, create_time, task_type, 1 AS sgn FROM new_rows
        UNION ALL SELECT task_id, create_time, task_type, -1 FROM old_rows) m USING (task_id)
 WHERE task_id IN (SELECT task_id FROM old_rows o JOIN new_rows n USING (task_id)
                    WHERE (mps_rollup_day(o.create_time), o.task_type)
                          IS DISTINCT FROM (mps_rollup_day(n.create_time), n.task_type))$q$;
    fn text := $q$CREATE OR REPLACE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    -- A statement that wrote nothing (a re-listed page) costs one probe.
    IF NOT EXISTS (SELECT 1 FROM %s) THEN
        RETURN NULL;
    END IF;
    PERFORM mps_rollup_lock();
    -- The horizon is read by the statements below. In READ COMMITTED each
    -- sees the one of the last fold; in an older snapshot a fold since
    -- would be missed, so it fails the write instead (40001, retried).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM 1 FROM rollup_fold FOR SHARE;
    END IF;
%s
    RETURN NULL;
END $body$$q$;
BEGIN
    FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
        rows_of := CASE op WHEN 'DELETE' THEN 'old_rows' ELSE 'new_rows' END;
        moved := '';
        IF op = 'UPDATE' THEN
            -- A task whose day or type changed takes its outcome and
            -- sub-task results along (MPS changes neither; an operator
            -- might change a type).
            moved := format($q$
    IF EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n USING (task_id)
                WHERE (mps_rollup_day(o.create_time), o.task_type)
                      IS DISTINCT FROM (mps_rollup_day(n.create_time), n.task_type)) THEN
        %s;
        %s;
        %s;
    END IF;$q$,
                mps_rollup_upsert('rollup_daily_outcomes', format(moved_src, '(SELECT task_id, outcome, err_code, err_code_ext FROM task_details)')),
                mps_rollup_upsert('rollup_daily_error_codes', format(moved_src, '(SELECT task_id, outcome, err_code, err_code_ext FROM task_details)')),
                mps_rollup_upsert('rollup_daily_subtask_outcomes', format(moved_src, '(SELECT task_id, kind, status, err_code, err_code_ext FROM task_subtask_results)')));
        END IF;
        EXECUTE format(fn, 'mps_rollup_tasks_' || lower(op), rows_of,
            mps_rollup_upsert('rollup_daily_tasks', mps_rollup_delta_source(op)) || ';' ||
            mps_rollup_upsert('rollup_daily_durations', mps_rollup_delta_source(op)) || ';' ||
            mps_rollup_upsert('rollup_monthly_durations', mps_rollup_delta_source(op)) || ';' ||
            mps_rollup_upsert('rollup_daily_subtasks', mps_rollup_delta_source(op)) || ';' || moved);
        EXECUTE format(fn, 'mps_rollup_details_' || lower(op), rows_of,
            mps_rollup_upsert('rollup_daily_outcomes', mps_rollup_task_source(op, 'x.task_id, x.outcome, x.err_code, x.err_code_ext')) || ';' ||
            mps_rollup_upsert('rollup_daily_error_codes', mps_rollup_task_source(op, 'x.task_id, x.outcome, x.err_code, x.err_code_ext')) || ';');
        EXECUTE format(fn, 'mps_rollup_subtasks_' || lower(op), rows_of,
            mps_rollup_upsert('rollup_daily_subtask_outcomes', mps_rollup_task_source(op, 'x.kind, x.status, x.err_code, x.err_code_ext')) || ';');
    END LOOP;
END $m$;

SELECT mps_rollup_make_triggers();

-- mps_rollup_attach_triggers puts the trigger functions on the task tables
-- (again, after a migration makes the tables anew).
CREATE FUNCTION mps_rollup_attach_triggers() RETURNS void
    LANGUAGE plpgsql AS $f$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('tasks', 'tasks'), ('task_details', 'details'),
                                   ('task_subtask_results', 'subtasks')) AS v(tbl, name) LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %I()', 'rollup_' || t.name || '_insert', t.tbl, 'mps_rollup_' || t.name || '_insert');
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %I()', 'rollup_' || t.name || '_update', t.tbl, 'mps_rollup_' || t.name || '_update');
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION %I()', 'rollup_' || t.name || '_delete', t.tbl, 'mps_rollup_' || t.name || '_delete');
    END LOOP;
END $f$;
SELECT mps_rollup_attach_triggers();

-- The raw sources, for the backfill below and for `rollups check`: the rows
-- whose create_time falls in [lo, hi), and with nulls those without one.
CREATE FUNCTION mps_rollup_raw_source(rollup text, lo timestamptz, hi timestamptz, nulls boolean) RETURNS text
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

CREATE FUNCTION mps_rollup_names() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['rollup_daily_tasks', 'rollup_daily_durations', 'rollup_monthly_durations', 'rollup_daily_subtasks',
                       'rollup_daily_outcomes', 'rollup_daily_error_codes', 'rollup_daily_subtask_outcomes'] $$;

-- mps_rollups_build adds the raw rows created in [lo, hi) (and, with nulls,
-- those without a create_time) to every rollup: the backfill of an existing
-- archive, and `mps-archiver rollups rebuild`.
CREATE FUNCTION mps_rollups_build(lo timestamptz, hi timestamptz, nulls boolean) RETURNS void
    LANGUAGE plpgsql AS $f$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY mps_rollup_names() LOOP
        EXECUTE mps_rollup_upsert(r, mps_rollup_raw_source(r, lo, hi, nulls));
    END LOOP;
END $f$;

-- mps_rollup_fold moves the fold horizon forward to upto: the daily
-- duration sketches of the days between the old horizon and the new one
-- are added to their months' sketches, which the triggers keep in step from
-- then on (writes to days so old are rare: the API lists a task for seven
-- days). The archiver calls it at every run start with the day before the
-- API's window (storage.FoldRollups; the first run after this migration
-- folds the history it built); it returns whether the horizon moved.
CREATE FUNCTION mps_rollup_fold(upto date) RETURNS boolean
    LANGUAGE plpgsql AS $f$
DECLARE
    h date;
BEGIN
    -- Never past today: the triggers would keep every month in step twice.
    upto := least(upto, (now() AT TIME ZONE 'UTC')::date);
    -- Most run starts find nothing to fold, and need not wait for writers.
    SELECT horizon INTO h FROM rollup_fold;
    IF upto <= h THEN
        RETURN false;
    END IF;
    -- The daily rows are read after the lock is granted: in a snapshot
    -- taken before, a writer that held it would be missed.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'mps_rollup_fold runs in a READ COMMITTED transaction, not %',
            current_setting('transaction_isolation');
    END IF;
    PERFORM mps_rollup_lock();
    SELECT horizon INTO h FROM rollup_fold FOR UPDATE;
    IF upto <= h THEN
        RETURN false;
    END IF;
    INSERT INTO rollup_monthly_durations AS r
    SELECT date_trunc('month', day::timestamp)::date, task_type, measure, sign, bucket, sum(n)::bigint
      FROM rollup_daily_durations
     WHERE day > '-infinity' AND day >= h AND day < upto
     GROUP BY 1, 2, 3, 4, 5
    HAVING sum(n) <> 0
     ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (month, task_type, measure, sign, bucket) DO UPDATE SET n = r.n + EXCLUDED.n;
    UPDATE rollup_fold SET horizon = upto;
    RETURN true;
END $f$;

-- Backfill, a month at a time with a progress notice per month (the
-- migrate command prints them). The triggers above already hold the table
-- locks, so no write can slip between the backfill and the triggers.
DO $$
DECLARE
    m timestamp;
    months integer;
    i integer := 0;
BEGIN
    PERFORM mps_rollups_build('-infinity', '-infinity', true);
    -- The months that hold tasks (month arithmetic in UTC, whatever the
    -- session's TimeZone), and no others.
    CREATE TEMP TABLE mps_rollup_months ON COMMIT DROP AS
    SELECT DISTINCT date_trunc('month', create_time AT TIME ZONE 'UTC') AS m FROM tasks WHERE create_time IS NOT NULL;
    SELECT count(*) INTO months FROM mps_rollup_months;
    FOR m IN SELECT mps_rollup_months.m FROM mps_rollup_months ORDER BY 1 LOOP
        PERFORM mps_rollups_build(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC', false);
        i := i + 1;
        RAISE NOTICE 'rollups: built % (% of % months)', to_char(m, 'YYYY-MM'), i, months;
    END LOOP;
END $$;


-- The public views keep their names and columns and read the rollups.
CREATE OR REPLACE VIEW report_daily_counts AS
SELECT day, task_type, status, tasks
  FROM rollup_daily_tasks
 WHERE tasks <> 0 AND day <> '-infinity';

-- Percentiles from the merged sketch: the value of the bucket holding the
-- rank floor(q * (n - 1)), within 2% of that order statistic. Each day's
-- are read by a lateral lookup, so a filter on day (a dashboard's range)
-- reads only those days' buckets; one lookup per measure, each one row,
-- which PostgreSQL drops when a query reads none of its columns (a panel
-- of queue waits does not merge the processing sketches).
CREATE OR REPLACE VIEW report_daily_durations AS
SELECT c.day, c.task_type, c.tasks, c.started, c.finished,
       q.p50 AS queue_p50_s, q.p90 AS queue_p90_s, q.p99 AS queue_p99_s,
       p.p50 AS processing_p50_s, p.p90 AS processing_p90_s, p.p99 AS processing_p99_s
  FROM (SELECT day, task_type, sum(tasks)::bigint AS tasks, sum(started)::bigint AS started, sum(finished)::bigint AS finished
          FROM rollup_daily_tasks
         WHERE day <> '-infinity'
         GROUP BY 1, 2) c
  LEFT JOIN LATERAL (
       SELECT min(v) FILTER (WHERE cum > 0.5 * (total - 1)) AS p50,
              min(v) FILTER (WHERE cum > 0.9 * (total - 1)) AS p90,
              min(v) FILTER (WHERE cum > 0.99 * (total - 1)) AS p99
         FROM (SELECT mps_sketch_value(d.sign, d.bucket) AS v,
                      sum(d.n) OVER (ORDER BY d.sign, d.sign * d.bucket ROWS UNBOUNDED PRECEDING) AS cum,
                      sum(d.n) OVER () AS total
                 FROM rollup_daily_durations d
                WHERE d.day = c.day AND d.task_type = c.task_type AND d.measure = 'queue' AND d.n <> 0) b) q ON true
  LEFT JOIN LATERAL (
       SELECT min(v) FILTER (WHERE cum > 0.5 * (total - 1)) AS p50,
              min(v) FILTER (WHERE cum > 0.9 * (total - 1)) AS p90,
              min(v) FILTER (WHERE cum > 0.99 * (total - 1)) AS p99
         FROM (SELECT mps_sketch_value(d.sign, d.bucket) AS v,
                      sum(d.n) OVER (ORDER BY d.sign, d.sign * d.bucket ROWS UNBOUNDED PRECEDING) AS cum,
                      sum(d.n) OVER () AS total
                 FROM rollup_daily_durations d
                WHERE d.day = c.day AND d.task_type = c.task_type AND d.measure = 'processing' AND d.n <> 0) b) p ON true
 WHERE c.tasks <> 0;

CREATE OR REPLACE VIEW report_subtask_usage AS
SELECT sub_task_type,
       task_type,
       sum(tasks)::bigint AS tasks,
       min(first_created) FILTER (WHERE tasks <> 0) AS first_created,
       max(last_created) FILTER (WHERE tasks <> 0) AS last_created,
       mps_subtask_kind(sub_task_type) AS sub_task_kind
  FROM rollup_daily_subtasks
 GROUP BY 1, 2
HAVING sum(tasks) <> 0;

CREATE OR REPLACE VIEW report_daily_outcomes AS
SELECT f.day,
       f.task_type,
       f.tasks AS finished,
       o.succeeded,
       o.failed,
       o.expired,
       greatest(f.tasks - o.succeeded - o.failed - o.expired, 0) AS unknown,
       round(o.failed::numeric / nullif(o.succeeded + o.failed, 0), 4) AS failure_rate
  FROM rollup_daily_tasks f
 CROSS JOIN LATERAL (
       SELECT coalesce(sum(tasks) FILTER (WHERE outcome = 'succeeded'), 0)::bigint AS succeeded,
              coalesce(sum(tasks) FILTER (WHERE outcome = 'failed'), 0)::bigint AS failed,
              coalesce(sum(tasks) FILTER (WHERE outcome = 'expired'), 0)::bigint AS expired
         FROM rollup_daily_outcomes r
        WHERE r.day = f.day AND r.task_type = f.task_type) o
 WHERE f.status = 'FINISH' AND f.tasks <> 0 AND f.day <> '-infinity';

CREATE OR REPLACE VIEW report_error_codes AS
SELECT error_code,
       task_type,
       sum(tasks)::bigint AS tasks,
       min(first_created) FILTER (WHERE tasks <> 0) AS first_created,
       max(last_created) FILTER (WHERE tasks <> 0) AS last_created
  FROM rollup_daily_error_codes
 GROUP BY 1, 2
HAVING sum(tasks) <> 0;

CREATE OR REPLACE VIEW report_subtask_outcomes AS
SELECT kind,
       sum(subtasks)::bigint AS subtasks,
       sum(failed)::bigint AS failed
  FROM rollup_daily_subtask_outcomes
 GROUP BY 1
HAVING sum(subtasks) <> 0;

CREATE OR REPLACE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_details
         WHERE outcome = 'expired' AND err_code = 'gave_up' AND fetched_at > now() - interval '7 days') AS gave_up,
       (SELECT coalesce(sum(tasks), 0)::bigint FROM rollup_daily_outcomes WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;

-- The run ledger by day, grouped so that a filter on day reaches the
-- ledger's rows through an index: a report of 30 days reads their runs,
-- not every run since the first.
CREATE INDEX sync_runs_day_idx ON sync_runs (((started_at AT TIME ZONE 'UTC')::date));

CREATE OR REPLACE VIEW report_sync_health AS
SELECT d.day, d.runs, d.succeeded, d.failed, d.last_success,
       (SELECT count(*) FROM coverage_gaps g WHERE (g.detected_at AT TIME ZONE 'UTC')::date = d.day) AS gaps_found,
       d.duration_p50_s
  FROM (SELECT (started_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS runs,
               count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               max(started_at) FILTER (WHERE status = 'succeeded') AS last_success,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))
                   FILTER (WHERE status = 'succeeded') AS duration_p50_s
          FROM sync_runs
         GROUP BY 1) d;
