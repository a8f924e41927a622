-- One row per sync run: the audit trail of the archiver itself.
CREATE TABLE sync_runs (
    id               bigserial PRIMARY KEY,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    status           text        NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'succeeded', 'failed')),
    trigger          text        NOT NULL DEFAULT 'manual',
    host             text        NOT NULL DEFAULT '',
    statuses_drained text[]      NOT NULL DEFAULT '{}',
    pages            integer     NOT NULL DEFAULT 0,
    tasks_seen       bigint      NOT NULL DEFAULT 0,
    tasks_inserted   bigint      NOT NULL DEFAULT 0,
    tasks_updated    bigint      NOT NULL DEFAULT 0,
    tasks_unchanged  bigint      NOT NULL DEFAULT 0,
    records_skipped  bigint      NOT NULL DEFAULT 0,
    warnings         bigint      NOT NULL DEFAULT 0,
    error            text
);

CREATE INDEX sync_runs_started_at_idx ON sync_runs (started_at);
CREATE INDEX sync_runs_running_idx ON sync_runs (id) WHERE status = 'running';
