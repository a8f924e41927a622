-- Back to migration 17: the archived usage goes (a backfill reads the last
-- 365 days again; older days are lost).
DROP VIEW IF EXISTS report_usage_daily, report_output_minutes, report_usage_reconciliation;
DROP FUNCTION IF EXISTS mps_usage_reconciliation(date, date);
DROP FUNCTION IF EXISTS mps_output_minutes(date, date);
DROP FUNCTION IF EXISTS mps_usage_codec(text);
DROP TABLE IF EXISTS usage_runs, usage_coverage, usage_revisions, usage_daily;
