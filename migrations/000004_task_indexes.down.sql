DROP INDEX IF EXISTS tasks_task_type_idx;
DROP INDEX IF EXISTS tasks_status_idx;
DROP INDEX IF EXISTS tasks_create_time_idx;
