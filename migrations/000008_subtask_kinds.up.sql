-- SubTaskTypes come in two vocabularies: the seed page's ("action-trans")
-- and the current API's ("Transcode"). mps_subtask_kind() maps both onto the
-- current one, so reports count them as the same kinds. Go's
-- mps.SubTaskKinds holds the same table; a test keeps the two equal.
CREATE FUNCTION mps_subtask_kind(sub_task_type text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE sub_task_type
        WHEN 'action-trans' THEN 'Transcode'
        WHEN 'action-animated-graphics' THEN 'AnimatedGraphics'
        WHEN 'action-snapshotByTimeOffset' THEN 'SnapshotByTimeOffset'
        WHEN 'action-sample-snapshot' THEN 'SampleSnapshot'
        WHEN 'action-image-sprite' THEN 'ImageSprites'
        WHEN 'action-coverBySnapshot' THEN 'CoverBySnapshot'
        WHEN 'action-adaptive-substream' THEN 'AdaptiveDynamicStreaming'
        WHEN 'action-AIReview' THEN 'AiContentReview'
        WHEN 'action-AIAnalysis' THEN 'AiAnalysis'
        WHEN 'action-AIRecognition' THEN 'AiRecognition'
        WHEN 'action-AIQualityControl' THEN 'AiQualityControl'
        WHEN 'action-editmedia' THEN 'EditMedia'
        ELSE sub_task_type END $$;

-- report_subtask_usage gains the kind, as its last column.
CREATE OR REPLACE VIEW report_subtask_usage AS
SELECT s.sub_task_type,
       t.task_type,
       count(*) AS tasks,
       min(t.create_time) AS first_created,
       max(t.create_time) AS last_created,
       mps_subtask_kind(s.sub_task_type) AS sub_task_kind
  FROM tasks t
 CROSS JOIN LATERAL unnest(t.sub_task_types) AS s(sub_task_type)
 GROUP BY 1, 2;
