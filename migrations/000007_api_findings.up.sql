-- What the archiver has learned about the API from its answers (does
-- DescribeTasks honour StartTime/EndTime?), shared by every replica and
-- checked again after a day.
CREATE TABLE api_capabilities (
    name       text        PRIMARY KEY,
    state      text        NOT NULL CHECK (state IN ('supported', 'unsupported', 'ignored')),
    checked_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    detail     text        NOT NULL DEFAULT ''
);

-- What each run observed of the API's paging that departs from the
-- reference page's reading (see README, "How a sync works").
ALTER TABLE sync_runs
    ADD COLUMN cursor_restarts      integer NOT NULL DEFAULT 0,
    ADD COLUMN tokens_recovered     integer NOT NULL DEFAULT 0,
    ADD COLUMN tokens_lost          integer NOT NULL DEFAULT 0,
    ADD COLUMN echoed_tokens        integer NOT NULL DEFAULT 0,
    ADD COLUMN out_of_range_records integer NOT NULL DEFAULT 0;
