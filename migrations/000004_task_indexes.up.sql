-- Indexes the reports and ad-hoc audit queries lean on.
CREATE INDEX tasks_create_time_idx ON tasks (create_time);
-- Nearly every task ends FINISH: indexing only the others keeps the index
-- small and cheap to maintain, and "what is still unfinished" fast.
CREATE INDEX tasks_status_idx ON tasks (status) WHERE status <> 'FINISH';
CREATE INDEX tasks_task_type_idx ON tasks (task_type, create_time);
