DELETE FROM api_capabilities WHERE state IN ('create_time', 'finish_time');
ALTER TABLE api_capabilities DROP CONSTRAINT IF EXISTS api_capabilities_state_check;
ALTER TABLE api_capabilities ADD CONSTRAINT api_capabilities_state_check
    CHECK (state IN ('supported', 'unsupported', 'ignored'));

CREATE OR REPLACE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_detail_queue WHERE attempts >= 5) AS gave_up,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;

CREATE OR REPLACE VIEW report_daily_outcomes AS
SELECT (t.create_time AT TIME ZONE 'UTC')::date AS day,
       t.task_type,
       count(*) AS finished,
       count(d.task_id) FILTER (WHERE d.outcome = 'succeeded') AS succeeded,
       count(d.task_id) FILTER (WHERE d.outcome = 'failed') AS failed,
       count(d.task_id) FILTER (WHERE d.outcome = 'expired') AS expired,
       count(*) FILTER (WHERE d.task_id IS NULL) AS unknown,
       round(count(d.task_id) FILTER (WHERE d.outcome = 'failed')::numeric
             / nullif(count(d.task_id) FILTER (WHERE d.outcome IN ('succeeded', 'failed')), 0), 4) AS failure_rate
  FROM tasks t
  LEFT JOIN task_details d ON d.task_id = t.task_id
 WHERE t.status = 'FINISH' AND t.create_time IS NOT NULL
 GROUP BY 1, 2;

ALTER TABLE sync_runs
    DROP COLUMN IF EXISTS resolved_tasks,
    DROP COLUMN IF EXISTS gone_tasks,
    DROP COLUMN IF EXISTS unresolved_tasks,
    DROP COLUMN IF EXISTS detail_errors,
    DROP COLUMN IF EXISTS clock_skew_s;

-- Undecided outcomes become what earlier versions called them.
UPDATE task_details SET outcome = 'succeeded' WHERE outcome = 'undecided';
ALTER TABLE task_details DROP CONSTRAINT IF EXISTS task_details_outcome_check;
ALTER TABLE task_details ADD CONSTRAINT task_details_outcome_check
    CHECK (outcome IN ('succeeded', 'failed', 'expired'));
