DROP VIEW IF EXISTS report_subtask_usage;
CREATE VIEW report_subtask_usage AS
SELECT s.sub_task_type,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created
  FROM tasks t
 CROSS JOIN LATERAL unnest(t.sub_task_types) AS s(sub_task_type)
 GROUP BY 1, 2;
DROP FUNCTION IF EXISTS mps_subtask_kind(text);
