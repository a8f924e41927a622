DROP VIEW IF EXISTS report_unfinished;
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
ALTER TABLE tasks DROP COLUMN IF EXISTS gone_at;
ALTER TABLE sync_runs
    DROP COLUMN IF EXISTS kind,
    DROP COLUMN IF EXISTS list_requests,
    DROP COLUMN IF EXISTS detail_requests,
    DROP COLUMN IF EXISTS lower_bound;
