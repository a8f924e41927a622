-- Cold months: a closed month's facts exported as Parquet files (to a
-- directory or an S3-compatible bucket) with a manifest, and, under
-- archive.keep_months, its partitions detached once the export is read
-- back and found equal.
--
-- archive_exports: each completed export, as written (never changed): the
-- manifest's SHA-256 is a leaf of the proof log, so an auditor holding a
-- checkpoint can tell the files are the ones the archive wrote.
CREATE TABLE archive_exports (
    id              bigserial   PRIMARY KEY,
    month           date        NOT NULL CHECK (month = date_trunc('month', month)),
    destination     text        NOT NULL,  -- the directory or s3://bucket/prefix (never credentials)
    manifest_sha256 text        NOT NULL,
    rows            jsonb       NOT NULL,  -- per table
    proof_size      bigint,                -- the proof log's size when the month was read
    exported_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archive_exports_month_idx ON archive_exports (month, id);

-- archive_months: where each month stands on its way out, one step at a
-- time, each committed before the next begins, so a crash at any point
-- resumes from the last step: exporting (files being written; none is
-- trusted until the manifest is), exported (the manifest written and
-- logged), verified (read back and equal to the database), detached (its
-- partitions dropped: the export is now the month's only copy here).
CREATE TABLE archive_months (
    month       date        PRIMARY KEY CHECK (month = date_trunc('month', month)),
    state       text        NOT NULL CHECK (state IN ('exporting', 'exported', 'verified', 'detached')),
    export_id   bigint      REFERENCES archive_exports (id),
    destination text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),  -- when it reached its state
    error       text,       -- the last failed step's error
    -- The month's rows as the read-back found them equal to the export
    -- (mps_month_fingerprint, in the read-back's snapshot): detaching
    -- computes it again and refuses any difference.
    fingerprint text,
    CHECK (state = 'exporting' OR export_id IS NOT NULL),
    CHECK (state NOT IN ('verified', 'detached') OR fingerprint IS NOT NULL)
);

-- A month's rows, as one value that changes with any of them: per table,
-- the count and the sum of each row's hash (computed a row at a time, in
-- no order: a month of millions costs a scan, never its size in memory).
CREATE FUNCTION mps_month_fingerprint(m date) RETURNS text
    LANGUAGE plpgsql STABLE SET TimeZone = 'UTC' AS $f$
DECLARE
    t text;
    n bigint;
    h numeric;
    out text := '';
BEGIN
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        EXECUTE format('SELECT count(*), coalesce(sum((''x'' || substr(md5(x::text), 1, 15))::bit(60)::bigint::numeric), 0)
                          FROM %I x WHERE create_time >= %L AND create_time < %L', t,
                       m::timestamp AT TIME ZONE 'UTC', (m + interval '1 month')::timestamp AT TIME ZONE 'UTC')
            INTO n, h;
        out := out || format('%s:%s:%s;', t, n, h);
    END LOOP;
    RETURN out;
END $f$;

CREATE FUNCTION mps_proof_export(e archive_exports) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET TimeZone = 'UTC'
    AS $$ SELECT row_to_json(x)::text FROM (SELECT 'export' AS fact, e.*) x $$;

-- Whoever may write runs may record exports (the least-privilege roles of
-- deploy/postgres/least-privilege.sql, or any other).
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT a.grantee, a.privilege_type
               FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
              WHERE c.oid = 'sync_runs'::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON archive_exports, archive_months TO %s', g.privilege_type,
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
        IF g.privilege_type IN ('INSERT', 'UPDATE') THEN
            EXECUTE format('GRANT USAGE ON SEQUENCE archive_exports_id_seq TO %s',
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
        END IF;
    END LOOP;
END $$;

-- The month's partitions, detached and dropped, in one transaction, only
-- for a month whose export was read back and found equal (state
-- 'verified') and whose row counts are still the export's: nothing is
-- dropped without a verified export of exactly what is dropped. Detaching
-- fires no trigger: the rollups keep the month, and reports over years
-- read them as before. SECURITY DEFINER: the partitions are the schema
-- owner's, as mps_ensure_partitions makes them.
CREATE FUNCTION mps_detach_month(m date) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET TimeZone = 'UTC' SET lock_timeout = '10s' AS $f$
DECLARE
    t text;
    part text;
    counted bigint;
    want jsonb;
    fp text;
    e_id bigint;
    e_sha text;
BEGIN
    SELECT e.rows, a.fingerprint, e.id, e.manifest_sha256 INTO want, fp, e_id, e_sha
      FROM archive_months a JOIN archive_exports e ON e.id = a.export_id AND e.month = a.month
     WHERE a.month = m AND a.state = 'verified' FOR UPDATE OF a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mps_detach_month: % has no verified export', to_char(m, 'YYYY-MM');
    END IF;
    -- Only a closed month: ended more than the API's window and a day ago.
    IF (m + interval '1 month')::timestamp AT TIME ZONE 'UTC' > now() - interval '8 days' THEN
        RAISE EXCEPTION 'mps_detach_month: % is not closed', to_char(m, 'YYYY-MM');
    END IF;
    -- Its export is in the proof log, as recorded.
    IF NOT EXISTS (SELECT 1 FROM proof_log WHERE kind = 'export' AND key = e_id::text
                      AND data::json ->> 'manifest_sha256' = e_sha) THEN
        RAISE EXCEPTION 'mps_detach_month: the export of % is not in the proof log', to_char(m, 'YYYY-MM');
    END IF;
    -- Writers of the month wait (one lock order: parents, as partitions
    -- are made), then its rows must be those verified, to the last byte.
    PERFORM pg_advisory_xact_lock(hashtext('mps_archiver_partitions'));
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        EXECUTE format('LOCK TABLE %I IN SHARE MODE', t);
    END LOOP;
    IF mps_month_fingerprint(m) IS DISTINCT FROM fp THEN
        RAISE EXCEPTION 'mps_detach_month: % changed since its export was verified: export it again', to_char(m, 'YYYY-MM');
    END IF;
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        part := format('%s_y%sm%s', t, to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('%I', part)) IS NULL THEN
            -- No partition: the month's rows (if any) are elsewhere (the
            -- DEFAULT partition), and cannot be detached with it.
            IF coalesce((want ->> t)::bigint, 0) > 0 THEN
                RAISE EXCEPTION 'mps_detach_month: % of % has no partition of its own', t, to_char(m, 'YYYY-MM');
            END IF;
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*) FROM %I', part) INTO counted;
        IF counted <> coalesce((want ->> t)::bigint, 0) THEN
            RAISE EXCEPTION 'mps_detach_month: % of % has % rows, its export % (changed since: export it again)',
                t, to_char(m, 'YYYY-MM'), counted, coalesce((want ->> t)::bigint, 0);
        END IF;
    END LOOP;
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        part := format('%s_y%sm%s', t, to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('%I', part)) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', t, part);
            EXECUTE format('DROP TABLE %I', part);
        END IF;
    END LOOP;
    UPDATE archive_months SET state = 'detached', updated_at = now(), error = NULL WHERE month = m;
END $f$;

-- Import, step one: an empty table for each of the month's partitions,
-- which the caller fills (COPY) in its transaction; step two attaches
-- them. Rows copied into a table not yet attached fire no trigger: the
-- rollups, which kept the month, count nothing twice, and the media facts
-- are imported as exported, not derived again.
CREATE FUNCTION mps_import_month_begin(m date) RETURNS text[]
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET TimeZone = 'UTC' AS $f$
DECLARE
    t text;
    part text;
    out text[] := '{}';
BEGIN
    PERFORM 1 FROM archive_months WHERE month = m AND state = 'detached' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mps_import_month_begin: % is not detached', to_char(m, 'YYYY-MM');
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('mps_archiver_partitions'));
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        part := format('%s_y%sm%s', t, to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF to_regclass(format('%I', part)) IS NOT NULL THEN
            -- A late write made the partition again: its rows are kept
            -- only if the export lacks them (the import's COPY fails on a
            -- duplicate key otherwise, and the month stays detached).
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', t, part);
        ELSE
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, t);
        END IF;
        IF session_user <> current_user THEN
            EXECUTE format('GRANT INSERT, SELECT ON %I TO %I', part, session_user);
        END IF;
        out := out || part;
    END LOOP;
    RETURN out;
END $f$;

CREATE FUNCTION mps_import_month_end(m date) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT SET TimeZone = 'UTC' AS $f$
DECLARE
    t text;
    part text;
BEGIN
    FOREACH t IN ARRAY mps_partitioned_tables() LOOP
        part := format('%s_y%sm%s', t, to_char(m, 'YYYY'), to_char(m, 'MM'));
        IF session_user <> current_user THEN
            EXECUTE format('REVOKE INSERT, SELECT ON %I FROM %I', part, session_user);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t, part,
                       m::timestamp AT TIME ZONE 'UTC', (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    -- The export is still the month's: it stays verified (its rows as
    -- imported), ready to be detached again.
    UPDATE archive_months SET state = 'verified', updated_at = now(), error = NULL,
                              fingerprint = mps_month_fingerprint(m) WHERE month = m;
END $f$;

REVOKE EXECUTE ON FUNCTION mps_detach_month(date), mps_import_month_begin(date), mps_import_month_end(date) FROM PUBLIC;
DO $$
DECLARE
    g record;
BEGIN
    -- Whoever may make partitions (the app role) may detach and import.
    FOR g IN SELECT a.grantee FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) AS a
              WHERE p.oid = 'mps_maintain_partitions(integer)'::regprocedure AND a.grantee <> p.proowner
                AND a.privilege_type = 'EXECUTE' LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION mps_detach_month(date), mps_import_month_begin(date), mps_import_month_end(date) TO %s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;
