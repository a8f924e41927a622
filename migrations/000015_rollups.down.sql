-- Back to the raw-row views of migrations 6, 8, 10 and 14, then drop the rollups.

CREATE OR REPLACE VIEW report_sync_health AS
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
DROP INDEX IF EXISTS sync_runs_day_idx;

CREATE OR REPLACE VIEW report_daily_counts AS
SELECT (create_time AT TIME ZONE 'UTC')::date AS day,
       task_type,
       status,
       count(*) AS tasks
  FROM tasks
 WHERE create_time IS NOT NULL
 GROUP BY 1, 2, 3;


CREATE OR REPLACE VIEW report_daily_durations AS
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


CREATE OR REPLACE VIEW report_subtask_usage AS
SELECT s.sub_task_type,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created,
       mps_subtask_kind(s.sub_task_type) AS sub_task_kind
  FROM tasks t
 CROSS JOIN LATERAL unnest(t.sub_task_types) AS s(sub_task_type)
 GROUP BY 1, 2;


CREATE OR REPLACE VIEW report_daily_outcomes AS
SELECT (t.create_time AT TIME ZONE 'UTC')::date AS day,
       t.task_type,
       count(*) AS finished,
       count(d.task_id) FILTER (WHERE d.outcome = 'succeeded') AS succeeded,
       count(d.task_id) FILTER (WHERE d.outcome = 'failed') AS failed,
       count(d.task_id) FILTER (WHERE d.outcome = 'expired') AS expired,
       count(*) FILTER (WHERE d.task_id IS NULL OR d.outcome = 'undecided') AS unknown,
       round(count(d.task_id) FILTER (WHERE d.outcome = 'failed')::numeric
             / nullif(count(d.task_id) FILTER (WHERE d.outcome IN ('succeeded', 'failed')), 0), 4) AS failure_rate
  FROM tasks t
  LEFT JOIN task_details d ON d.task_id = t.task_id
 WHERE t.status = 'FINISH' AND t.create_time IS NOT NULL
 GROUP BY 1, 2;


CREATE OR REPLACE VIEW report_error_codes AS
SELECT coalesce(d.err_code_ext, d.err_code, '(none)') AS error_code,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created
  FROM task_details d
  JOIN tasks t ON t.task_id = d.task_id
 WHERE d.outcome = 'failed'
 GROUP BY 1, 2;


CREATE OR REPLACE VIEW report_subtask_outcomes AS
SELECT s.kind,
       count(*) AS subtasks,
       count(*) FILTER (WHERE s.status = 'FAIL'
                           OR coalesce(s.err_code, '0') <> '0'
                           OR coalesce(s.err_code_ext, '') NOT IN ('', 'SUCCESS')) AS failed
  FROM task_subtask_results s
 GROUP BY 1;


CREATE OR REPLACE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_details
         WHERE outcome = 'expired' AND err_code = 'gave_up' AND fetched_at > now() - interval '7 days') AS gave_up,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;


DROP TRIGGER IF EXISTS rollup_tasks_insert ON tasks;
DROP TRIGGER IF EXISTS rollup_tasks_update ON tasks;
DROP TRIGGER IF EXISTS rollup_tasks_delete ON tasks;
DROP TRIGGER IF EXISTS rollup_details_insert ON task_details;
DROP TRIGGER IF EXISTS rollup_details_update ON task_details;
DROP TRIGGER IF EXISTS rollup_details_delete ON task_details;
DROP TRIGGER IF EXISTS rollup_subtasks_insert ON task_subtask_results;
DROP TRIGGER IF EXISTS rollup_subtasks_update ON task_subtask_results;
DROP TRIGGER IF EXISTS rollup_subtasks_delete ON task_subtask_results;
DROP FUNCTION IF EXISTS mps_rollup_tasks_insert(), mps_rollup_tasks_update(), mps_rollup_tasks_delete(),
    mps_rollup_details_insert(), mps_rollup_details_update(), mps_rollup_details_delete(),
    mps_rollup_subtasks_insert(), mps_rollup_subtasks_update(), mps_rollup_subtasks_delete();
DROP FUNCTION IF EXISTS mps_rollup_fold(date);
DROP FUNCTION IF EXISTS mps_rollup_durations_select(text, text, text);
DROP FUNCTION IF EXISTS mps_rollup_make_triggers();
DROP FUNCTION IF EXISTS mps_rollup_attach_triggers();
DROP FUNCTION IF EXISTS mps_rollup_task_source(text, text);
DROP FUNCTION IF EXISTS mps_rollup_lock();
DROP FUNCTION IF EXISTS mps_rollups_build(timestamptz, timestamptz, boolean);
DROP FUNCTION IF EXISTS mps_rollup_names();
DROP FUNCTION IF EXISTS mps_rollup_raw_source(text, timestamptz, timestamptz, boolean);
DROP FUNCTION IF EXISTS mps_rollup_delta_source(text);
DROP FUNCTION IF EXISTS mps_rollup_upsert(text, text);
DROP FUNCTION IF EXISTS mps_rollup_counters(text);
DROP FUNCTION IF EXISTS mps_rollup_keys(text);
DROP FUNCTION IF EXISTS mps_rollup_select(text, text);
DROP TABLE IF EXISTS rollup_daily_tasks, rollup_daily_durations, rollup_daily_subtasks,
    rollup_daily_outcomes, rollup_daily_error_codes, rollup_daily_subtask_outcomes,
    rollup_monthly_durations, rollup_fold;
DROP FUNCTION IF EXISTS mps_sketch_value(smallint, integer);
DROP FUNCTION IF EXISTS mps_sketch_bucket(double precision);
DROP FUNCTION IF EXISTS mps_sketch_sign(double precision);
DROP FUNCTION IF EXISTS mps_rollup_day(timestamptz);
