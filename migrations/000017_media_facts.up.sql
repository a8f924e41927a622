-- Media facts: the outputs and inputs each captured outcome reports
-- (UsageAndMedia.md, "Media facts inside DescribeTaskDetail"), one row
-- each, extracted from the stored (redacted) detail by triggers on
-- task_details in the same transaction as the outcome, and for the
-- outcomes already archived by the backfill below. Partitioned by month
-- like the other per-task tables, keyed by (task_id, create_time, ordinal).

CREATE TABLE task_outputs (
    task_id      text    NOT NULL,
    create_time  timestamptz,
    -- Position in the detail's result set (a workflow's
    -- MediaProcessResultSet, a schedule's ActivityResultSet); 0 for an
    -- edit's output.
    ordinal      integer NOT NULL,
    kind         text    NOT NULL,  -- Transcode, AdaptiveDynamicStreaming, AnimatedGraphics, …, EditMedia
    template     bigint,            -- the template (Definition)
    container    text,
    duration_s   double precision,
    no_duration  text,              -- why duration_s is NULL (never guessed)
    width        integer,
    height       integer,
    tier         text,              -- of the short edge: SD, HD, FHD, 2K, 4K, 8K (billing's)
    video_codec  text,
    fps          double precision,
    bitrate      bigint,            -- bits a second
    size_bytes   bigint,
    storage_type text,              -- COS, AWS-S3, VOD
    bucket       text,
    region       text,
    path         text
) PARTITION BY RANGE (create_time);
CREATE TABLE task_outputs_undated PARTITION OF task_outputs DEFAULT;
ALTER TABLE task_outputs ADD CONSTRAINT task_outputs_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time, ordinal);

CREATE TABLE task_inputs (
    task_id     text    NOT NULL,
    create_time timestamptz,
    ordinal     integer NOT NULL,  -- 0, or the position in an edit's FileInfoSet
    type        text,              -- COS, URL, AWS-S3 (S3), VOD
    bucket      text,
    region      text,
    object      text,
    url         text,              -- without its query string or user info
    duration_s  double precision,  -- from the workflow's MetaData, when read
    width       integer,
    height      integer,
    size_bytes  bigint
) PARTITION BY RANGE (create_time);
CREATE TABLE task_inputs_undated PARTITION OF task_inputs DEFAULT;
ALTER TABLE task_inputs ADD CONSTRAINT task_inputs_pkey UNIQUE NULLS NOT DISTINCT (task_id, create_time, ordinal);

CREATE OR REPLACE FUNCTION mps_partitioned_tables() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['tasks', 'task_status_changes', 'task_details', 'task_subtask_results',
                       'task_outputs', 'task_inputs'] $$;

-- A detail is the API's JSON, whatever a hostile answer puts in it: a
-- number where a string is expected must leave a column empty, not fail
-- the outcome's write.
CREATE FUNCTION mps_json_float(v jsonb) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) <> 'number' THEN NULL
                      WHEN (v #>> '{}')::numeric = 0 THEN 0
                      WHEN abs((v #>> '{}')::numeric) BETWEEN 1e-300 AND 1e300 THEN (v #>> '{}')::double precision END $$;

-- An error code as the failure rule reads it (mps.codeOf): a number's
-- text, a string trimmed, "" for anything else.
CREATE FUNCTION mps_json_code(v jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v #>> '{}' WHEN 'string' THEN btrim(v #>> '{}')
                      WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN 'true' ELSE '' END ELSE '' END $$;

CREATE FUNCTION mps_json_bigint(v jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND abs((v #>> '{}')::numeric) < 9e18
                      THEN trunc((v #>> '{}')::numeric)::bigint END $$;

CREATE FUNCTION mps_json_int(v jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND abs((v #>> '{}')::numeric) < 2e9
                      THEN trunc((v #>> '{}')::numeric)::integer END $$;

CREATE FUNCTION mps_json_text(v jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN jsonb_typeof(v) IN ('string', 'number') THEN left(v #>> '{}', 2000) END $$;

-- The billing tier of a resolution: its short edge (Tencent's pricing).
CREATE FUNCTION mps_media_tier(width integer, height integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN width IS NULL OR height IS NULL OR least(width, height) <= 0 THEN NULL
                      WHEN least(width, height) <= 480 THEN 'SD'
                      WHEN least(width, height) <= 720 THEN 'HD'
                      WHEN least(width, height) <= 1080 THEN 'FHD'
                      WHEN least(width, height) <= 1440 THEN '2K'
                      WHEN least(width, height) <= 2160 THEN '4K'
                      WHEN least(width, height) <= 4320 THEN '8K'
                      ELSE 'above 8K' END $$;

-- A location without what may carry a secret: its query string and
-- fragment, encoded or not (a signed URL's signature and key id are in its
-- query). mps_media_url also drops a URL's user info, with or without a
-- scheme, by the rule mps.Redact applies (an '@' later in the path stays).
CREATE FUNCTION mps_media_path(u text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT regexp_replace(u, '([?#]|%3[Ff]|%23).*$', '') $$;

CREATE FUNCTION mps_media_url(u text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE
        WHEN strpos(rest, '@') = 0 THEN p
        -- user info in the authority (user:pass@host, [REDACTED]@host)
        WHEN strpos(split_part(rest, '/', 1), '@') > 0 THEN scheme || regexp_replace(rest, '^[^/]*@', '')
        -- a password holding '/' (user:pa/ss@host): the authority has a ':'
        -- that is no port's; as mps.Redact reads it, up to the last '@'
        WHEN split_part(rest, '/', 1) ~ ':' AND split_part(split_part(rest, '/', 1), ':', 2) !~ '^[0-9]*$'
             THEN scheme || regexp_replace(rest, '^.*@', '')
        ELSE p END
      FROM (SELECT p, coalesce(substring(p FROM '^[A-Za-z][A-Za-z0-9+.-]*://'), '') AS scheme,
                   substr(p, length(coalesce(substring(p FROM '^[A-Za-z][A-Za-z0-9+.-]*://'), '')) + 1) AS rest
              FROM (SELECT mps_media_path(u) AS p) x) y $$;

-- The media kinds whose results are outputs (not the AI ones), and the
-- member of a result item (or of an activity's ActivityResItem) that holds
-- each kind's result.
CREATE FUNCTION mps_media_member(kind text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE kind
        WHEN 'Transcode' THEN 'TranscodeTask'
        WHEN 'AnimatedGraphics' THEN 'AnimatedGraphicTask'
        WHEN 'SnapshotByTimeOffset' THEN 'SnapshotByTimeOffsetTask'
        WHEN 'SampleSnapshot' THEN 'SampleSnapshotTask'
        WHEN 'ImageSprites' THEN 'ImageSpriteTask'
        WHEN 'CoverBySnapshot' THEN 'CoverBySnapshotTask'
        WHEN 'AdaptiveDynamicStreaming' THEN 'AdaptiveDynamicStreamingTask' END $$;

-- mps_media_outputs: one row per successful output of a detail (the
-- Response without RequestId): a workflow's media results, a schedule's
-- media activities, an edit's output. A live stream's detail has none.
-- Sizes and durations are the API's; outputs without one (adaptive
-- streaming, images, animated graphics) say so in no_duration.
CREATE FUNCTION mps_media_outputs(detail jsonb)
    RETURNS TABLE (ordinal integer, kind text, template bigint, container text, duration_s double precision,
                   no_duration text, width integer, height integer, tier text, video_codec text, fps double precision,
                   bitrate bigint, size_bytes bigint, storage_type text, bucket text, region text, path text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
WITH c AS (
    -- The container of the detail's TaskType (the others are null).
    SELECT detail->>'TaskType' AS typ, detail->(detail->>'TaskType') AS c
     WHERE jsonb_typeof(detail) = 'object' AND jsonb_typeof(detail->(detail->>'TaskType')) = 'object'
), results AS MATERIALIZED (  -- each result's member is looked up once, not in every column
    SELECT (e.ord - 1)::integer AS ordinal, mps_json_text(e.item->'Type') AS kind,
           e.item->mps_media_member(mps_json_text(e.item->'Type')) AS r
      FROM c, jsonb_array_elements(CASE WHEN c.typ = 'WorkflowTask' AND jsonb_typeof(c.c->'MediaProcessResultSet') = 'array'
                                        THEN c.c->'MediaProcessResultSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
     WHERE jsonb_typeof(e.item) = 'object'
    UNION ALL
    SELECT (e.ord - 1)::integer, mps_json_text(e.item->'ActivityType'),
           e.item->'ActivityResItem'->mps_media_member(mps_json_text(e.item->'ActivityType'))
      FROM c, jsonb_array_elements(CASE WHEN c.typ = 'ScheduleTask' AND jsonb_typeof(c.c->'ActivityResultSet') = 'array'
                                        THEN c.c->'ActivityResultSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
     WHERE jsonb_typeof(e.item) = 'object' AND jsonb_typeof(e.item->'ActivityResItem') = 'object'
    UNION ALL
    -- An edit's output, once it finished without an error (a result the
    -- detail reports as a success is an output, whatever its siblings did).
    SELECT 0, 'EditMedia', jsonb_build_object('Status', 'SUCCESS', 'Output', c.c->'Output')
      FROM c WHERE c.typ = 'EditMediaTask' AND c.c->>'Status' = 'FINISH' AND mps_json_code(c.c->'ErrCode') IN ('', '0')
)
SELECT r.ordinal, r.kind,
       coalesce(mps_json_bigint(o->'Definition'), mps_json_bigint(r.r->'Input'->'Definition')),
       mps_json_text(m->'Container'),
       mps_json_float(m->'Duration'),
       CASE WHEN mps_json_float(m->'Duration') IS NOT NULL THEN NULL
            WHEN r.kind = 'AdaptiveDynamicStreaming' THEN 'adaptive streaming: the detail carries no duration'
            WHEN r.kind = 'AnimatedGraphics' THEN 'animated graphics: the detail carries offsets, no duration'
            WHEN r.kind IN ('SnapshotByTimeOffset', 'SampleSnapshot', 'ImageSprites', 'CoverBySnapshot') THEN 'images'
            ELSE 'the detail reports no duration' END,
       w.width, w.height, mps_media_tier(w.width, w.height),
       mps_json_text(v->'Codec'), mps_json_float(v->'Fps'),
       mps_json_bigint(m->'Bitrate'), mps_json_bigint(m->'Size'),
       mps_json_text(s->'Type'),
       coalesce(mps_json_text(s->'CosOutputStorage'->'Bucket'), mps_json_text(s->'S3OutputStorage'->'S3Bucket'),
                mps_json_text(s->'VODOutputStorage'->'Bucket')),
       coalesce(mps_json_text(s->'CosOutputStorage'->'Region'), mps_json_text(s->'S3OutputStorage'->'S3Region'),
                mps_json_text(s->'VODOutputStorage'->'Region')),
       mps_media_path(mps_json_text(o->'Path'))
  FROM results r
 CROSS JOIN LATERAL (SELECT r.r->'Output' AS o) x
 CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(o->'MetaData') = 'object' THEN o->'MetaData' ELSE o END AS m,
                            CASE WHEN jsonb_typeof(o->'OutputStorage') = 'object' THEN o->'OutputStorage'
                                 WHEN jsonb_typeof(o->'Storage') = 'object' THEN o->'Storage' END AS s) y
 CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(m->'VideoStreamSet') = 'array' THEN m->'VideoStreamSet'->0 END AS v) z
 CROSS JOIN LATERAL (SELECT coalesce(mps_json_int(m->'Width'), mps_json_int(v->'Width')) AS width,
                            coalesce(mps_json_int(m->'Height'), mps_json_int(v->'Height')) AS height) w
 WHERE (r.kind = 'EditMedia' OR mps_media_member(r.kind) IS NOT NULL)
   AND jsonb_typeof(r.r) = 'object' AND jsonb_typeof(o) = 'object'
   -- A succeeded result, by the failure rule (mps.DecideOutcome): not
   -- FAIL, no non-zero ErrCode, no ErrCodeExt but SUCCESS.
   AND r.r->>'Status' = 'SUCCESS'
   AND mps_json_code(r.r->'ErrCode') IN ('', '0') AND coalesce(mps_json_text(r.r->'ErrCodeExt'), '') IN ('', 'SUCCESS')
$f$;

-- mps_media_inputs: a workflow's or schedule's input (with the workflow's
-- MetaData when it was read), an edit's inputs. Never a key: of an S3
-- input only its bucket, region and object; of a URL, no query string.
CREATE FUNCTION mps_media_inputs(detail jsonb)
    RETURNS TABLE (ordinal integer, type text, bucket text, region text, object text, url text,
                   duration_s double precision, width integer, height integer, size_bytes bigint)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
WITH c AS (
    SELECT detail->>'TaskType' AS typ, detail->(detail->>'TaskType') AS c
     WHERE jsonb_typeof(detail) = 'object' AND jsonb_typeof(detail->(detail->>'TaskType')) = 'object'
), inputs AS MATERIALIZED (
    SELECT 0 AS ordinal, c.c->'InputInfo' AS i, CASE WHEN jsonb_typeof(c.c->'MetaData') = 'object' THEN c.c->'MetaData' END AS md
      FROM c WHERE c.typ IN ('WorkflowTask', 'ScheduleTask') AND jsonb_typeof(c.c->'InputInfo') = 'object'
    UNION ALL
    SELECT (e.ord - 1)::integer, e.item->'InputInfo', NULL
      FROM c, jsonb_array_elements(CASE WHEN c.typ = 'EditMediaTask' AND jsonb_typeof(c.c->'Input'->'FileInfoSet') = 'array'
                                        THEN c.c->'Input'->'FileInfoSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
     WHERE jsonb_typeof(e.item->'InputInfo') = 'object'
)
SELECT ordinal, mps_json_text(i->'Type'),
       coalesce(mps_json_text(i->'CosInputInfo'->'Bucket'), mps_json_text(i->'S3InputInfo'->'S3Bucket'), mps_json_text(i->'VODInputInfo'->'Bucket')),
       coalesce(mps_json_text(i->'CosInputInfo'->'Region'), mps_json_text(i->'S3InputInfo'->'S3Region'), mps_json_text(i->'VODInputInfo'->'Region')),
       mps_media_path(coalesce(mps_json_text(i->'CosInputInfo'->'Object'), mps_json_text(i->'S3InputInfo'->'S3Object'),
                               mps_json_text(i->'VODInputInfo'->'Object'))),
       mps_media_url(mps_json_text(i->'UrlInputInfo'->'Url')),
       mps_json_float(md->'Duration'), mps_json_int(md->'Width'), mps_json_int(md->'Height'), mps_json_bigint(md->'Size')
  FROM inputs
$f$;

-- The triggers: an outcome's facts replace the ones of the outcome it
-- replaces (an undecided one read again), in the same transaction. A
-- truncated detail (over the size kept) has none to give. They run as the
-- schema's owner, so the archiver's role needs no grant on the tables.
CREATE FUNCTION mps_media_details_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $f$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM task_outputs t USING old_rows o
         WHERE t.task_id = o.task_id AND t.create_time IS NOT DISTINCT FROM o.create_time;
        DELETE FROM task_inputs t USING old_rows o
         WHERE t.task_id = o.task_id AND t.create_time IS NOT DISTINCT FROM o.create_time;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        -- The outcome matters more than its facts: an extraction that
        -- fails (a detail no test foresaw) costs the facts, with a warning
        -- in the server's log, not the outcome.
        BEGIN
            INSERT INTO task_outputs
            SELECT n.task_id, n.create_time, f.* FROM new_rows n CROSS JOIN LATERAL mps_media_outputs(n.raw) f
             WHERE n.raw IS NOT NULL AND NOT n.raw_truncated
                ON CONFLICT DO NOTHING;
            INSERT INTO task_inputs
            SELECT n.task_id, n.create_time, f.* FROM new_rows n CROSS JOIN LATERAL mps_media_inputs(n.raw) f
             WHERE n.raw IS NOT NULL AND NOT n.raw_truncated
                ON CONFLICT DO NOTHING;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'media facts of % outcome(s) not kept: %', (SELECT count(*) FROM new_rows), SQLERRM;
        END;
    END IF;
    RETURN NULL;
END $f$;
REVOKE EXECUTE ON FUNCTION mps_media_details_changed() FROM PUBLIC;

CREATE TRIGGER media_details_insert AFTER INSERT ON task_details REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mps_media_details_changed();
CREATE TRIGGER media_details_update AFTER UPDATE ON task_details REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mps_media_details_changed();
CREATE TRIGGER media_details_delete AFTER DELETE ON task_details REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mps_media_details_changed();

-- The months of the archive get their partitions of the new tables, then
-- the outcomes already archived are read a month at a time.
DO $$
DECLARE
    m timestamp;
    months integer;
    i integer := 0;
    t text;
    fn text;
BEGIN
    PERFORM mps_maintain_partitions();
    CREATE TEMP TABLE mps_media_months ON COMMIT DROP AS
    SELECT DISTINCT date_trunc('month', create_time AT TIME ZONE 'UTC') AS m FROM task_details WHERE create_time IS NOT NULL;
    SELECT count(*) INTO months FROM mps_media_months;
    INSERT INTO task_outputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_outputs(d.raw) f
     WHERE d.create_time IS NULL AND d.raw IS NOT NULL AND NOT d.raw_truncated ON CONFLICT DO NOTHING;
    INSERT INTO task_inputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_inputs(d.raw) f
     WHERE d.create_time IS NULL AND d.raw IS NOT NULL AND NOT d.raw_truncated ON CONFLICT DO NOTHING;
    FOR m IN SELECT mps_media_months.m FROM mps_media_months ORDER BY 1 LOOP
        PERFORM mps_ensure_partitions(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
        -- Bounds as literals: the month's partition alone is planned.
        FOR t, fn IN VALUES ('task_outputs', 'mps_media_outputs'), ('task_inputs', 'mps_media_inputs') LOOP
            EXECUTE format('INSERT INTO %I SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL %I(d.raw) f
                             WHERE d.create_time >= %L AND d.create_time < %L AND d.raw IS NOT NULL AND NOT d.raw_truncated
                                ON CONFLICT DO NOTHING', t, fn, m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
        END LOOP;
        i := i + 1;
        RAISE NOTICE 'media facts: read % (% of % months)', to_char(m, 'YYYY-MM'), i, months;
    END LOOP;
END $$;

-- Only the trigger writes the media facts (default privileges may have
-- given the archiver's role more); whoever may read the sub-task results
-- may read them.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
              WHERE c.oid IN ('task_outputs'::regclass, 'task_inputs'::regclass) AND a.grantee <> c.relowner
                AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON task_outputs, task_inputs FROM %s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
    FOR g IN SELECT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
              WHERE c.oid = 'task_subtask_results'::regclass AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT SELECT ON task_outputs, task_inputs TO %s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;
