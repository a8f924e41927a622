-- Reporting views over the captured outcomes, documented column by column
-- in docs/reporting.md. Like migration 6's, they name their columns.

-- Finished tasks per UTC day of creation and task type, with how they
-- ended: detailed (succeeded + failed), failed, expired, not yet known.
CREATE VIEW report_daily_outcomes AS
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

-- Failed tasks per first error code (ErrCodeExt where the API gave one,
-- else ErrCode) and task type.
CREATE VIEW report_error_codes AS
SELECT coalesce(d.err_code_ext, d.err_code, '(none)') AS error_code,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created
  FROM task_details d
  JOIN tasks t ON t.task_id = d.task_id
 WHERE d.outcome = 'failed'
 GROUP BY 1, 2;

-- Sub-task results per kind: how many, how many failed.
CREATE VIEW report_subtask_outcomes AS
SELECT s.kind,
       count(*) AS subtasks,
       count(*) FILTER (WHERE s.status = 'FAIL'
                           OR coalesce(s.err_code, '0') <> '0'
                           OR coalesce(s.err_code_ext, '') NOT IN ('', 'SUCCESS')) AS failed
  FROM task_subtask_results s
 GROUP BY 1;

-- The detail queue now: what is pending, overdue (past its planned
-- deadline), given up, and what expired uncaptured.
CREATE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_detail_queue WHERE attempts >= 5) AS gave_up,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;
