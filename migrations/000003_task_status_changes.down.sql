DROP TABLE IF EXISTS task_status_changes;
