-- Every status transition the archiver observed, with the run that saw it.
-- A task's first sighting is tasks.first_status / first_seen_at, not a row
-- here: a cold sync of a million tasks would otherwise write a million
-- rows that say nothing a tasks row does not.
CREATE TABLE task_status_changes (
    id          bigserial   PRIMARY KEY,
    task_id     text        NOT NULL,
    run_id      bigint,
    from_status text        NOT NULL,
    to_status   text        NOT NULL,
    observed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX task_status_changes_task_id_idx ON task_status_changes (task_id, observed_at);
