-- Reporting views and functions, documented column by column in
-- docs/reporting.md. They name the columns they use (never *), so adding
-- columns to the tables under them is always safe; a migration that changes
-- the type of a column they use must drop and recreate them in the same
-- file (see docs/reporting.md, "Changing the schema under the views").

-- Tasks per UTC day of creation, task type and current status.
CREATE VIEW report_daily_counts AS
SELECT (create_time AT TIME ZONE 'UTC')::date AS day,
       task_type,
       status,
       count(*) AS tasks
  FROM tasks
 WHERE create_time IS NOT NULL
 GROUP BY 1, 2, 3;

-- Queue wait (begin - create) and processing time (finish - begin), in
-- seconds, per UTC day of creation and task type. Percentiles cover the
-- tasks for which both ends are known.
CREATE VIEW report_daily_durations AS
SELECT (create_time AT TIME ZONE 'UTC')::date AS day,
       task_type,
       count(*) AS tasks,
       count(begin_process_time) AS started,
       count(finish_time) AS finished,
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM begin_process_time - create_time)) AS queue_p50_s,
       percentile_cont(0.9)  WITHIN GROUP (ORDER BY extract(epoch FROM begin_process_time - create_time)) AS queue_p90_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM begin_process_time - create_time)) AS queue_p99_s,
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY extract(epoch FROM finish_time - begin_process_time)) AS processing_p50_s,
       percentile_cont(0.9)  WITHIN GROUP (ORDER BY extract(epoch FROM finish_time - begin_process_time)) AS processing_p90_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finish_time - begin_process_time)) AS processing_p99_s
  FROM tasks
 WHERE create_time IS NOT NULL
 GROUP BY 1, 2;

-- How often each subtask type is used, per task type.
CREATE VIEW report_subtask_usage AS
SELECT s.sub_task_type,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created
  FROM tasks t
 CROSS JOIN LATERAL unnest(t.sub_task_types) AS s(sub_task_type)
 GROUP BY 1, 2;

-- Tasks not finished, as last seen, with how long they have been in their
-- state (seconds; from create for WAITING, from begin for PROCESSING).
CREATE VIEW report_unfinished AS
SELECT task_id,
       task_type,
       status,
       create_time,
       begin_process_time,
       extract(epoch FROM now() - CASE WHEN status = 'PROCESSING' THEN coalesce(begin_process_time, create_time) ELSE create_time END) AS in_state_s,
       last_changed_at
  FROM tasks
 WHERE status <> 'FINISH';

-- Tasks PROCESSING for longer than threshold.
CREATE FUNCTION report_stuck_processing(threshold interval DEFAULT interval '1 hour')
RETURNS TABLE (task_id text, task_type text, begin_process_time timestamptz, processing_s double precision)
LANGUAGE sql STABLE AS $$
    SELECT task_id, task_type, begin_process_time, extract(epoch FROM now() - begin_process_time)::double precision
      FROM tasks
     WHERE status = 'PROCESSING' AND begin_process_time < now() - threshold
     ORDER BY begin_process_time
$$;

-- Sync runs per UTC day, with the coverage gaps found that day.
CREATE VIEW report_sync_health AS
SELECT d.day,
       count(r.id) AS runs,
       count(r.id) FILTER (WHERE r.status = 'succeeded') AS succeeded,
       count(r.id) FILTER (WHERE r.status = 'failed') AS failed,
       max(r.started_at) FILTER (WHERE r.status = 'succeeded') AS last_success,
       (SELECT count(*) FROM coverage_gaps g WHERE (g.detected_at AT TIME ZONE 'UTC')::date = d.day) AS gaps_found,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.finished_at - r.started_at))
           FILTER (WHERE r.status = 'succeeded') AS duration_p50_s
  FROM (SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date AS day FROM sync_runs) d
  JOIN sync_runs r ON (r.started_at AT TIME ZONE 'UTC')::date = d.day
 GROUP BY d.day;

-- The status history of every task: its first sighting, then each observed
-- transition. Filter by task_id.
CREATE VIEW report_task_audit AS
SELECT task_id, first_seen_at AS observed_at, first_seen_run_id AS run_id,
       NULL::text AS from_status, first_status AS to_status
  FROM tasks
UNION ALL
SELECT task_id, observed_at, run_id, from_status, to_status
  FROM task_status_changes;
