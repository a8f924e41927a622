-- What MPS billed (DescribeUsageData: UsageAndMedia.md), kept past the
-- API's 365 days, and its reconciliation with the media facts of the
-- captured outcomes (migration 17).

-- One row per Beijing day, processing region, task type and
-- specification, as DescribeUsageData last reported it. specification is
-- '' for a type that reports only its daily summary (AnimatedGraphics,
-- AIReview, …). A figure the API stops reporting is set to zero, not
-- deleted: changed_at says when.
CREATE TABLE usage_daily (
    day           date        NOT NULL,  -- the Beijing (UTC+8) day of the API's bucket
    region        text        NOT NULL,  -- ProcessRegions: ap-guangzhou, …, aws
    type          text        NOT NULL,  -- Transcode, Enhance, AIAnalysis, Snapshot, …
    specification text        NOT NULL,  -- e.g. TESHD-10.H265.HD, Audio, SampleSnapshot; '' for none
    count         bigint      NOT NULL CHECK (count >= 0),
    usage         numeric     NOT NULL CHECK (usage >= 0),  -- seconds, or images (Snapshot, ImageProcess, AIGCImage)
    first_read_at timestamptz NOT NULL DEFAULT now(),
    changed_at    timestamptz NOT NULL DEFAULT now(),
    revisions     integer     NOT NULL DEFAULT 0,  -- times a later reading changed the figure
    PRIMARY KEY (day, region, type, specification)
);

-- Every figure a later reading replaced, as it was: what MPS said it
-- billed, and until when (the audit of a revised bill).
CREATE TABLE usage_revisions (
    day           date        NOT NULL,
    region        text        NOT NULL,
    type          text        NOT NULL,
    specification text        NOT NULL,
    count         bigint      NOT NULL,
    usage         numeric     NOT NULL,
    read_at       timestamptz NOT NULL,  -- when this figure was read (its changed_at)
    replaced_at   timestamptz NOT NULL DEFAULT now(),
    run_id        bigint                 -- the usage run whose reading replaced it
);
CREATE INDEX usage_revisions_figure_idx ON usage_revisions (day, region, type, specification);

-- Which days of each region and type have been read: first_day..last_day,
-- without a hole. A run reads on from last_day (re-reading the last days,
-- whose figures may be revised); a region or type never read is
-- backfilled over the 365 days the API keeps.
CREATE TABLE usage_coverage (
    region    text        NOT NULL,
    type      text        NOT NULL,
    first_day date        NOT NULL,
    last_day  date        NOT NULL CHECK (last_day >= first_day),
    read_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, type)
);

-- The usage ledger: one row per usage run, as sync_runs is for the task
-- lists. A run commits each query's days as it reads them: a failed run
-- keeps what it read, and the next goes on from there.
CREATE TABLE usage_runs (
    id            bigserial   PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    trigger       text        NOT NULL DEFAULT '',  -- schedule, sync, command
    host          text        NOT NULL DEFAULT '',
    backfill      boolean     NOT NULL DEFAULT false,  -- read days never read before
    from_day      date,
    to_day        date,
    requests      integer     NOT NULL DEFAULT 0,
    figures_added   bigint    NOT NULL DEFAULT 0,
    figures_revised bigint    NOT NULL DEFAULT 0,
    error         text
);
CREATE INDEX usage_runs_started_idx ON usage_runs (started_at);

-- The codec of a specification (H264, H265, AV1, MV-HEVC) from an output's
-- video codec as its detail writes it.
CREATE FUNCTION mps_usage_codec(codec text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE lower(codec)
                   WHEN 'h264' THEN 'H264' WHEN 'avc' THEN 'H264'
                   WHEN 'h265' THEN 'H265' WHEN 'hevc' THEN 'H265'
                   WHEN 'av1' THEN 'AV1' WHEN 'mv-hevc' THEN 'MV-HEVC'
                   ELSE upper(codec) END $$;

-- The transcoded outputs of the tasks that finished on the Beijing days
-- since..until, by task type, kind, template, bucket, codec and tier:
-- what the archive can say produced the bill. A task finishing more than
-- 7 days after its creation is never listed finished (DescribeTasks keeps
-- 7 days), so only the partitions of tasks created from since - 8 days are
-- read.
CREATE FUNCTION mps_output_minutes(since date, until date)
    RETURNS TABLE (day date, task_type text, kind text, template bigint, bucket text, codec text, tier text,
                   outputs bigint, outputs_without_duration bigint, seconds double precision, minutes double precision)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT (t.finish_time AT TIME ZONE 'Asia/Shanghai')::date, t.task_type, o.kind, o.template, o.bucket,
           mps_usage_codec(o.video_codec), o.tier,
           count(*), count(*) FILTER (WHERE o.duration_s IS NULL),
           coalesce(sum(o.duration_s), 0), coalesce(sum(o.duration_s), 0) / 60
      FROM task_outputs o
      JOIN tasks t ON t.task_id = o.task_id AND t.create_time = o.create_time
     WHERE o.kind IN ('Transcode', 'EditMedia', 'AdaptiveDynamicStreaming')
       AND o.create_time >= (since - 8)::timestamp AT TIME ZONE 'UTC'
       AND t.create_time >= (since - 8)::timestamp AT TIME ZONE 'UTC'
       AND t.finish_time >= since::timestamp AT TIME ZONE 'Asia/Shanghai'
       AND t.finish_time < (until + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
     GROUP BY 1, 2, 3, 4, 5, 6, 7
$$;

-- Billed transcoding next to what the archive's outputs account for, per
-- Beijing day and class: codec × tier of the short edge for video (the
-- bill knows Standard from TESHD and Edit, the specification's first
-- part, the outputs do not, so the row sums them), Audio for outputs with
-- a duration but no video stream and no resolution, and Remuxing (billed
-- only: an output does not say it was remuxed), codec and tier NULL.
-- The day's outputs_without_duration (adaptive streaming),
-- outputs_unclassified (a duration but a codec without a resolution or the
-- other way round) and tasks_without_outcome (finished tasks whose detail
-- was not captured) are repeated on each of its rows: billed time the
-- archive cannot place. Each billed figure is whole seconds: status is
-- agrees when the difference is within half a second per figure
-- (billed_figures), else differs, billed_only or archived_only.
CREATE FUNCTION mps_usage_reconciliation(since date, until date)
    RETURNS TABLE (day date, codec text, tier text, specifications text[], billed_figures bigint, billed_count bigint, billed_s numeric,
                   outputs bigint, accounted_s numeric, difference_s numeric,
                   outputs_without_duration bigint, outputs_unclassified bigint, tasks_without_outcome bigint, status text)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    WITH billed AS (
        SELECT u.day,
               CASE WHEN split_part(u.specification, '.', 3) <> ''
                    THEN split_part(u.specification, '.', 2) || '.' || split_part(u.specification, '.', 3)
                    ELSE u.specification END AS class,
               array_agg(DISTINCT u.specification ORDER BY u.specification) AS specifications,
               count(*) AS figures, sum(u.count)::bigint AS billed_count, sum(u.usage) AS billed_s
          FROM usage_daily u
         WHERE u.type = 'Transcode' AND u.day BETWEEN since AND until AND (u.count > 0 OR u.usage > 0)
         GROUP BY 1, 2
    ), minutes AS (
        SELECT * FROM mps_output_minutes(since, until)
    ), accounted AS (
        SELECT m.day, coalesce(m.codec || '.' || m.tier, 'Audio') AS class,
               sum(m.outputs - m.outputs_without_duration)::bigint AS outputs,
               round(sum(m.seconds)::numeric, 3) AS accounted_s
          FROM minutes m
         WHERE m.outputs > m.outputs_without_duration AND (m.codec IS NULL) = (m.tier IS NULL)
         GROUP BY 1, 2
    ), unseen AS (
        SELECT m.day, sum(m.outputs_without_duration)::bigint AS outputs_without_duration,
               coalesce(sum(m.outputs - m.outputs_without_duration) FILTER (WHERE (m.codec IS NULL) <> (m.tier IS NULL)), 0)::bigint AS outputs_unclassified
          FROM minutes m GROUP BY 1
    ), no_outcome AS (
        SELECT (t.finish_time AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS tasks_without_outcome
          FROM tasks t
          LEFT JOIN task_details d ON d.task_id = t.task_id AND d.create_time = t.create_time
         WHERE t.status = 'FINISH'
           AND t.create_time >= (since - 8)::timestamp AT TIME ZONE 'UTC'
           AND t.finish_time >= since::timestamp AT TIME ZONE 'Asia/Shanghai'
           AND t.finish_time < (until + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
           AND (d.task_id IS NULL OR d.outcome NOT IN ('succeeded', 'failed') OR d.raw IS NULL OR d.raw_truncated)
         GROUP BY 1
    ), rows AS (
        SELECT coalesce(b.day, a.day) AS day, coalesce(b.class, a.class) AS class,
               coalesce(b.specifications, CASE WHEN a.class LIKE '%.%' THEN '{}' ELSE ARRAY[a.class] END) AS specifications,
               coalesce(b.figures, 0) AS figures, coalesce(b.billed_count, 0) AS billed_count,
               coalesce(b.billed_s, 0) AS billed_s, coalesce(a.outputs, 0) AS outputs, coalesce(a.accounted_s, 0) AS accounted_s,
               b.day IS NOT NULL AS billed, a.day IS NOT NULL AS archived
          FROM billed b
          FULL JOIN accounted a ON a.day = b.day AND a.class = b.class
    )
    SELECT r.day, nullif(split_part(r.class, '.', 1), r.class), nullif(split_part(r.class, '.', 2), ''),
           r.specifications, r.figures, r.billed_count, r.billed_s, r.outputs, r.accounted_s,
           r.billed_s - r.accounted_s, coalesce(s.outputs_without_duration, 0), coalesce(s.outputs_unclassified, 0),
           coalesce(n.tasks_without_outcome, 0),
           CASE WHEN NOT r.archived THEN 'billed_only'
                WHEN NOT r.billed THEN 'archived_only'
                WHEN abs(r.billed_s - r.accounted_s) <= 0.5 * r.figures + 0.001 THEN 'agrees'
                ELSE 'differs' END
      FROM rows r
      LEFT JOIN unseen s ON s.day = r.day
      LEFT JOIN no_outcome n ON n.day = r.day
$$;

-- The same over every day kept: filter it by day, or call the functions
-- with a range, which read only the months they need.
CREATE VIEW report_usage_reconciliation AS
    SELECT * FROM mps_usage_reconciliation('-infinity', 'infinity');

CREATE VIEW report_output_minutes AS
    SELECT * FROM mps_output_minutes('-infinity', 'infinity');

-- Billed usage by day, type and specification over every region, with its
-- unit.
CREATE VIEW report_usage_daily AS
    SELECT day, type, specification, sum(count)::bigint AS count, sum(usage) AS usage,
           CASE WHEN type IN ('Snapshot', 'ImageProcess', 'AIGCImage') THEN 'images' ELSE 'seconds' END AS unit,
           array_agg(region ORDER BY region) FILTER (WHERE count > 0 OR usage > 0) AS regions
      FROM usage_daily
     GROUP BY day, type, specification;
