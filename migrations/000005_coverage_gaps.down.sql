DROP TABLE IF EXISTS coverage_gaps;
ALTER TABLE sync_runs DROP COLUMN IF EXISTS api_started_at;
