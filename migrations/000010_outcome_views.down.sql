DROP VIEW IF EXISTS report_detail_backlog;
DROP VIEW IF EXISTS report_subtask_outcomes;
DROP VIEW IF EXISTS report_error_codes;
DROP VIEW IF EXISTS report_daily_outcomes;
