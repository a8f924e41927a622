-- The proof log (issue: Proof): an append-only Merkle log of the archive's
-- facts, one leaf per fact, appended by the statement (or transaction)
-- that writes the fact, so that the log and the archive never disagree.
-- Signed checkpoints of it are kept in proof_checkpoints and published
-- outside the database; `mps-archiver verify` recomputes the tree and
-- checks every table against it (docs/operations.md, "Proof").
--
-- A leaf is a JSON object (the fact's row as row_to_json writes it, with
-- "fact" naming its kind and a raw record replaced by the SHA-256 of its
-- text: raw_sha256), and its hash the RFC 6962 leaf hash SHA-256(0x00 ||
-- its UTF-8 bytes). The text is kept as written: the hash is over it,
-- never over a re-encoding.

-- The archive's facts stand still while they join the log (below): a
-- writer still running the previous binary waits here, and is not
-- missed by the backfill. (Writers of that binary append no leaves: stop
-- them before this migration, as the upgrade notes say.)
LOCK TABLE tasks, task_status_changes, task_details, task_subtask_results, sync_runs, coverage_gaps,
           usage_daily, usage_runs IN SHARE MODE;

-- The log's one head row: its origin (the name its checkpoints carry),
-- its size, and whether writers append (false only in a benchmark that
-- measures what the log costs: `verify` reports it).
CREATE TABLE proof_log_head (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    origin     text        NOT NULL,
    size       bigint      NOT NULL DEFAULT 0,
    enabled    boolean     NOT NULL DEFAULT true,
    started_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO proof_log_head (origin) VALUES ('mps-archiver/' || gen_random_uuid());

-- The leaves, by index. kind and key say which fact a leaf is (the same
-- fact's later leaves supersede its earlier ones); `verify` trusts
-- neither, and reads both from data again. hash is the leaf's RFC 6962
-- hash (the tree is built from it; `verify` checks it against data).
-- data is the leaf.
CREATE TABLE proof_log (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    kind text   NOT NULL,
    key  text   NOT NULL,
    hash bytea  NOT NULL,
    data text   NOT NULL  -- hashed as its UTF-8 bytes
);

-- Append-only, against accidents: an UPDATE, DELETE or TRUNCATE fails.
-- (Whoever owns the table can drop this; what `verify` checks is the
-- tree against the signed checkpoints.)
CREATE FUNCTION mps_proof_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'proof_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER proof_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON proof_log
    FOR EACH STATEMENT EXECUTE FUNCTION mps_proof_log_append_only();

-- A checkpoint: the tree's size and root after a run, the signed note
-- (NULL when no signing key is configured), and the compact range of the
-- tree at that size (its right border), from which the next checkpoint
-- extends without reading older leaves.
CREATE TABLE proof_checkpoints (
    size       bigint      PRIMARY KEY,
    root       bytea       NOT NULL,
    note       text,
    key_name   text,
    compact    bytea[]     NOT NULL,
    run_id     bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The leaves' data, one function a kind: the writers and this
-- migration's backfill build them here, in one place. A leaf is the row
-- as row_to_json writes it (compact, columns in order), "fact" first,
-- with timestamps in UTC whatever the session's zone; a raw record is
-- replaced by the SHA-256 (hex) of its text as jsonb prints it (raw::text;
-- taken from jsonb_send, which is that text after a version byte, for
-- half the cost).
CREATE FUNCTION mps_proof_sha256(j jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT encode(sha256(substring(jsonb_send(j) FROM 2)), 'hex') $$;

-- A task's row, as its leaf names it by hash: the row is kept in tasks,
-- and a cold sync writes a leaf of 200 bytes a task rather than 600.
CREATE FUNCTION mps_proof_task_row(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
               t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
               t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) x $$;

-- A task's leaf: what it is (its key and status) and its row's hash. The
-- row is built here again rather than by calling mps_proof_task_row:
-- every page of a sync builds one a task, and a nested call with its own
-- SET clause would cost a time-zone switch each.
CREATE FUNCTION mps_proof_task(t tasks) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT 'task' AS fact, t.task_id, t.create_time, t.status,
               encode(sha256(convert_to(row_to_json(r)::text, 'UTF8')), 'hex') AS row_sha256
          FROM (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id,
                       t.last_changed_run_id, t.gone_at, mps_proof_sha256(t.raw) AS raw_sha256) r) x $$;

CREATE FUNCTION mps_proof_status_change(c task_status_changes) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'status_change' AS fact, c.*) x $$;

-- An outcome carries its sub-task results: they are written with it.
CREATE FUNCTION mps_proof_outcome(d task_details) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$
SELECT row_to_json(x)::text
  FROM (SELECT 'outcome' AS fact, d.task_id, d.create_time, d.fetched_at, d.outcome, d.err_code, d.err_code_ext, d.message,
               d.ambiguities, d.raw_truncated, d.raw_bytes, mps_proof_sha256(d.raw) AS raw_sha256,
               (SELECT coalesce(json_agg(s ORDER BY s.ordinal), '[]')
                  FROM (SELECT s.ordinal, s.kind, s.status, s.err_code, s.err_code_ext, s.message, s.definition, s.output_path
                          FROM task_subtask_results s
                         WHERE s.task_id = d.task_id
                           AND (s.create_time = d.create_time OR s.create_time IS NULL AND d.create_time IS NULL)) s) AS subtasks) x $$;

CREATE FUNCTION mps_proof_run(r sync_runs) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'run' AS fact, r.*) x $$;

CREATE FUNCTION mps_proof_gap(g coverage_gaps) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'gap' AS fact, g.*) x $$;

CREATE FUNCTION mps_proof_usage(u usage_daily) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'usage' AS fact, u.*) x $$;

CREATE FUNCTION mps_proof_usage_run(r usage_runs) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'usage_run' AS fact, r.*) x $$;

-- The RFC 6962 hash of a leaf: SHA-256(0x00 || its UTF-8 bytes).
CREATE FUNCTION mps_proof_leaf_hash(data text) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT sha256('\x00'::bytea || convert_to(data, 'UTF8')) $$;

-- mps_proof_append appends leaves in the order given and returns how
-- many. The head row's lock, held from here to the commit, serializes the
-- writers (replicas, detail workers): each appends where the last one
-- committed, so indexes are dense and in commit order. Writers call it
-- last in their transaction. The rollup lock comes first: the rollup
-- triggers take it too (a page's at the end of its statement, after
-- this), and two locks must be taken in one order by every writer.
-- Writers that keep rollups already wait for one another on it.
CREATE FUNCTION mps_proof_append(kinds text[], keys text[], datas text[]) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    n bigint := coalesce(cardinality(kinds), 0);
    start bigint;
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    PERFORM mps_rollup_lock();
    UPDATE proof_log_head SET size = size + n WHERE enabled RETURNING size - n INTO start;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO proof_log (idx, kind, key, hash, data)
    SELECT start + o - 1, k, y, mps_proof_leaf_hash(d), d
      FROM unnest(kinds, keys, datas) WITH ORDINALITY AS u(k, y, d, o);
    RETURN n;
END $$;

-- Each fact's key, as mps_proof_append is given it and `verify` derives
-- it from the leaf: a task and its outcome by TaskId@create time (in
-- microseconds since 1970, '' when unknown: a task's rows are keyed by
-- both), a status change by TaskId#id, a run or gap by id, a usage figure
-- by day|region|type|specification.
CREATE FUNCTION mps_proof_key(task_id text, create_time timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT task_id || '@' || coalesce((extract(epoch FROM create_time) * 1000000)::bigint::text, '') $$;

CREATE FUNCTION mps_proof_usage_key(u usage_daily) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_char(u.day, 'YYYY-MM-DD') || '|' || u.region || '|' || u.type || '|' || u.specification $$;

-- The archive as it stands joins the log: its facts, oldest first, so
-- that the first checkpoint covers everything already kept.
WITH facts AS (
    SELECT 1 AS o, t.first_seen_at AS at, 'task' AS kind, mps_proof_key(t.task_id, t.create_time) AS key, mps_proof_task(t) AS data FROM tasks t
    UNION ALL
    SELECT 2, c.observed_at, 'status_change', c.task_id || '#' || c.id, mps_proof_status_change(c) FROM task_status_changes c
    UNION ALL
    SELECT 3, d.fetched_at, 'outcome', mps_proof_key(d.task_id, d.create_time), mps_proof_outcome(d) FROM task_details d
    UNION ALL
    SELECT 4, r.started_at, 'run', r.id::text, mps_proof_run(r) FROM sync_runs r WHERE r.status <> 'running'
    UNION ALL
    SELECT 5, g.detected_at, 'gap', g.id::text, mps_proof_gap(g) FROM coverage_gaps g
    UNION ALL
    SELECT 6, u.changed_at, 'usage', mps_proof_usage_key(u), mps_proof_usage(u) FROM usage_daily u
    UNION ALL
    SELECT 7, r.started_at, 'usage_run', r.id::text, mps_proof_usage_run(r) FROM usage_runs r WHERE r.status <> 'running'
), appended AS (
    INSERT INTO proof_log (idx, kind, key, hash, data)
    SELECT row_number() OVER (ORDER BY o, at, key) - 1, kind, key, mps_proof_leaf_hash(data), data FROM facts
    RETURNING 1
)
UPDATE proof_log_head SET size = (SELECT count(*) FROM appended);
