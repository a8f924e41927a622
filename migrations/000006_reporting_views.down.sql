DROP VIEW IF EXISTS report_task_audit;
DROP VIEW IF EXISTS report_sync_health;
DROP FUNCTION IF EXISTS report_stuck_processing(interval);
DROP VIEW IF EXISTS report_unfinished;
DROP VIEW IF EXISTS report_subtask_usage;
DROP VIEW IF EXISTS report_daily_durations;
DROP VIEW IF EXISTS report_daily_counts;
