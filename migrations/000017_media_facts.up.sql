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
    AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::double precision END $$;

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
    AS $$ SELECT CASE WHEN least(width, height) IS NULL OR least(width, height) <= 0 THEN NULL
                      WHEN least(width, height) <= 480 THEN 'SD'
                      WHEN least(width, height) <= 720 THEN 'HD'
                      WHEN least(width, height) <= 1080 THEN 'FHD'
                      WHEN least(width, height) <= 1440 THEN '2K'
                      WHEN least(width, height) <= 2160 THEN '4K'
                      WHEN least(width, height) <= 4320 THEN '8K'
                      ELSE 'above 8K' END $$;

-- A URL without what may carry a secret: its query string, fragment and
-- user info (a signed URL's signature and key id are in its query).
CREATE FUNCTION mps_media_url(u text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT regexp_replace(regexp_replace(u, '[?#].*$', ''), '^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@', '\1') $$;

-- The media kinds whose results are outputs (not the AI ones).
CREATE FUNCTION mps_media_kinds() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['Transcode', 'AnimatedGraphics', 'SnapshotByTimeOffset', 'SampleSnapshot',
                       'ImageSprites', 'CoverBySnapshot', 'AdaptiveDynamicStreaming'] $$;

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
WITH results AS (
    SELECT (e.ord - 1)::integer AS ordinal, mps_json_text(e.item->'Type') AS kind,
           (SELECT value FROM jsonb_each(e.item) WHERE key LIKE '%Task' AND jsonb_typeof(value) = 'object' LIMIT 1) AS r
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(detail->'WorkflowTask'->'MediaProcessResultSet') = 'array'
                                     THEN detail->'WorkflowTask'->'MediaProcessResultSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
    UNION ALL
    SELECT (e.ord - 1)::integer, mps_json_text(e.item->'ActivityType'),
           (SELECT value FROM jsonb_each(CASE WHEN jsonb_typeof(e.item->'ActivityResItem') = 'object' THEN e.item->'ActivityResItem' END)
             WHERE key LIKE '%Task' AND jsonb_typeof(value) = 'object' LIMIT 1)
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(detail->'ScheduleTask'->'ActivityResultSet') = 'array'
                                     THEN detail->'ScheduleTask'->'ActivityResultSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
    UNION ALL
    -- An edit's output, once it finished without an error.
    SELECT 0, 'EditMedia', jsonb_build_object('Status', 'SUCCESS', 'Output', detail->'EditMediaTask'->'Output')
     WHERE detail->'EditMediaTask'->>'Status' = 'FINISH' AND mps_json_bigint(detail->'EditMediaTask'->'ErrCode') = 0
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
       mps_json_text(o->'Path')
  FROM results r
 CROSS JOIN LATERAL (SELECT r.r->'Output' AS o) x
 CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(o->'MetaData') = 'object' THEN o->'MetaData' ELSE o END AS m,
                            coalesce(o->'OutputStorage', o->'Storage') AS s) y
 CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(m->'VideoStreamSet') = 'array' THEN m->'VideoStreamSet'->0 END AS v) z
 CROSS JOIN LATERAL (SELECT coalesce(mps_json_int(m->'Width'), mps_json_int(v->'Width')) AS width,
                            coalesce(mps_json_int(m->'Height'), mps_json_int(v->'Height')) AS height) w
 WHERE r.kind = ANY (mps_media_kinds() || 'EditMedia'::text)
   AND r.r->>'Status' = 'SUCCESS' AND jsonb_typeof(o) = 'object'
$f$;

-- mps_media_inputs: a workflow's or schedule's input (with the workflow's
-- MetaData when it was read), an edit's inputs. Never a key: of an S3
-- input only its bucket, region and object; of a URL, no query string.
CREATE FUNCTION mps_media_inputs(detail jsonb)
    RETURNS TABLE (ordinal integer, type text, bucket text, region text, object text, url text,
                   duration_s double precision, width integer, height integer, size_bytes bigint)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
WITH inputs AS (
    SELECT 0 AS ordinal, c->'InputInfo' AS i, CASE WHEN jsonb_typeof(c->'MetaData') = 'object' THEN c->'MetaData' END AS md
      FROM (SELECT coalesce(detail->'WorkflowTask', detail->'ScheduleTask') AS c) w
     WHERE jsonb_typeof(c->'InputInfo') = 'object'
    UNION ALL
    SELECT (e.ord - 1)::integer, e.item->'InputInfo', NULL
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(detail->'EditMediaTask'->'Input'->'FileInfoSet') = 'array'
                                     THEN detail->'EditMediaTask'->'Input'->'FileInfoSet' ELSE '[]' END) WITH ORDINALITY AS e(item, ord)
     WHERE jsonb_typeof(e.item->'InputInfo') = 'object'
)
SELECT ordinal, mps_json_text(i->'Type'),
       coalesce(mps_json_text(i->'CosInputInfo'->'Bucket'), mps_json_text(i->'S3InputInfo'->'S3Bucket'), mps_json_text(i->'VODInputInfo'->'Bucket')),
       coalesce(mps_json_text(i->'CosInputInfo'->'Region'), mps_json_text(i->'S3InputInfo'->'S3Region'), mps_json_text(i->'VODInputInfo'->'Region')),
       coalesce(mps_json_text(i->'CosInputInfo'->'Object'), mps_json_text(i->'S3InputInfo'->'S3Object'), mps_json_text(i->'VODInputInfo'->'Object')),
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
        INSERT INTO task_outputs
        SELECT n.task_id, n.create_time, f.* FROM new_rows n CROSS JOIN LATERAL mps_media_outputs(n.raw) f
         WHERE n.raw IS NOT NULL AND NOT n.raw_truncated;
        INSERT INTO task_inputs
        SELECT n.task_id, n.create_time, f.* FROM new_rows n CROSS JOIN LATERAL mps_media_inputs(n.raw) f
         WHERE n.raw IS NOT NULL AND NOT n.raw_truncated;
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
BEGIN
    PERFORM mps_maintain_partitions();
    CREATE TEMP TABLE mps_media_months ON COMMIT DROP AS
    SELECT DISTINCT date_trunc('month', create_time AT TIME ZONE 'UTC') AS m FROM task_details WHERE create_time IS NOT NULL;
    SELECT count(*) INTO months FROM mps_media_months;
    INSERT INTO task_outputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_outputs(d.raw) f
     WHERE d.create_time IS NULL AND d.raw IS NOT NULL AND NOT d.raw_truncated;
    INSERT INTO task_inputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_inputs(d.raw) f
     WHERE d.create_time IS NULL AND d.raw IS NOT NULL AND NOT d.raw_truncated;
    FOR m IN SELECT mps_media_months.m FROM mps_media_months ORDER BY 1 LOOP
        PERFORM mps_ensure_partitions(m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
        INSERT INTO task_outputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_outputs(d.raw) f
         WHERE d.create_time >= m AT TIME ZONE 'UTC' AND d.create_time < (m + interval '1 month') AT TIME ZONE 'UTC'
           AND d.raw IS NOT NULL AND NOT d.raw_truncated;
        INSERT INTO task_inputs SELECT d.task_id, d.create_time, f.* FROM task_details d CROSS JOIN LATERAL mps_media_inputs(d.raw) f
         WHERE d.create_time >= m AT TIME ZONE 'UTC' AND d.create_time < (m + interval '1 month') AT TIME ZONE 'UTC'
           AND d.raw IS NOT NULL AND NOT d.raw_truncated;
        i := i + 1;
        RAISE NOTICE 'media facts: read % (% of % months)', to_char(m, 'YYYY-MM'), i, months;
    END LOOP;
END $$;

-- Whoever may read the sub-task results may read the media facts.
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
              WHERE c.oid = 'task_subtask_results'::regclass AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT SELECT ON task_outputs, task_inputs TO %s',
                       CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END);
    END LOOP;
END $$;
