-- Back to migration 16: the media facts go (they are read again from the
-- stored details by migrating up).
DROP TRIGGER IF EXISTS media_details_insert ON task_details;
DROP TRIGGER IF EXISTS media_details_update ON task_details;
DROP TRIGGER IF EXISTS media_details_delete ON task_details;
DROP FUNCTION IF EXISTS mps_media_details_changed();
DROP FUNCTION IF EXISTS mps_media_inputs(jsonb);
DROP FUNCTION IF EXISTS mps_media_outputs(jsonb);
DROP FUNCTION IF EXISTS mps_media_member(text);
DROP FUNCTION IF EXISTS mps_media_path(text);
DROP FUNCTION IF EXISTS mps_json_code(jsonb);
DROP FUNCTION IF EXISTS mps_media_url(text);
DROP FUNCTION IF EXISTS mps_media_tier(integer, integer);
DROP FUNCTION IF EXISTS mps_json_text(jsonb);
DROP FUNCTION IF EXISTS mps_json_int(jsonb);
DROP FUNCTION IF EXISTS mps_json_bigint(jsonb);
DROP FUNCTION IF EXISTS mps_json_float(jsonb);
DROP TABLE IF EXISTS task_outputs, task_inputs;
CREATE OR REPLACE FUNCTION mps_partitioned_tables() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['tasks', 'task_status_changes', 'task_details', 'task_subtask_results'] $$;
