-- Incremental runs: what kind each run was, what it asked the API, and
-- the lower bound of its FINISH listing.
ALTER TABLE sync_runs
    ADD COLUMN kind            text    NOT NULL DEFAULT 'full' CHECK (kind IN ('full', 'incremental')),
    ADD COLUMN list_requests   integer NOT NULL DEFAULT 0,
    ADD COLUMN detail_requests integer NOT NULL DEFAULT 0,
    ADD COLUMN lower_bound     timestamptz;

-- When the archive found that an unfinished task had left the API's
-- window without the archiver ever seeing it finish.
ALTER TABLE tasks ADD COLUMN gone_at timestamptz;

-- report_unfinished gains gone_at, as its last column.
CREATE OR REPLACE VIEW report_unfinished AS
SELECT task_id,
       task_type,
       status,
       create_time,
       begin_process_time,
       extract(epoch FROM now() - CASE WHEN status = 'PROCESSING' THEN coalesce(begin_process_time, create_time) ELSE create_time END) AS in_state_s,
       last_changed_at,
       gone_at
  FROM tasks
 WHERE status <> 'FINISH';
