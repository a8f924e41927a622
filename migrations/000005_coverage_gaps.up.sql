-- The API's clock at the start of each run (from its Date header), which is
-- what the 7-day window is measured against.
ALTER TABLE sync_runs ADD COLUMN api_started_at timestamptz;

-- Periods the archive may be missing because no full drain succeeded within
-- the API's 7-day window: tasks created in (gap_start, gap_end] were never
-- listed to the archiver.
CREATE TABLE coverage_gaps (
    id               bigserial   PRIMARY KEY,
    detected_at      timestamptz NOT NULL DEFAULT now(),
    run_id           bigint      NOT NULL,
    previous_run_id  bigint      NOT NULL,
    gap_start        timestamptz NOT NULL,
    gap_end          timestamptz NOT NULL,
    CHECK (gap_end > gap_start)
);

CREATE INDEX coverage_gaps_gap_start_idx ON coverage_gaps (gap_start);
