ALTER TABLE sync_runs
    DROP COLUMN IF EXISTS cursor_restarts,
    DROP COLUMN IF EXISTS tokens_recovered,
    DROP COLUMN IF EXISTS tokens_lost,
    DROP COLUMN IF EXISTS echoed_tokens,
    DROP COLUMN IF EXISTS out_of_range_records;
DROP TABLE IF EXISTS api_capabilities;
