-- Indexes the reports and ad-hoc audit queries lean on.
CREATE INDEX tasks_create_time_idx ON tasks (create_time);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_task_type_idx ON tasks (task_type, create_time);
