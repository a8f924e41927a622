-- Drops every captured outcome: `migrate down` past this step loses them.
DROP TABLE IF EXISTS task_subtask_results;
DROP TABLE IF EXISTS task_details;
DROP TABLE IF EXISTS task_detail_queue;
