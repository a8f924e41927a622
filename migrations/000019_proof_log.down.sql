-- Back to migration 18: the proof log and its checkpoints go. The facts
-- stay; checkpoints already published no longer match anything here.
DROP FUNCTION IF EXISTS mps_proof_append(text[], text[], text[]);
DROP FUNCTION IF EXISTS mps_proof_leaf_hash(text);
DROP FUNCTION IF EXISTS mps_proof_usage_key(usage_daily);
DROP FUNCTION IF EXISTS mps_proof_key(text, timestamptz);
DROP FUNCTION IF EXISTS mps_proof_usage_run(usage_runs);
DROP FUNCTION IF EXISTS mps_proof_usage(usage_daily);
DROP FUNCTION IF EXISTS mps_proof_gap(coverage_gaps);
DROP FUNCTION IF EXISTS mps_proof_run(sync_runs);
DROP FUNCTION IF EXISTS mps_proof_outcome(task_details);
DROP FUNCTION IF EXISTS mps_proof_status_change(task_status_changes);
DROP FUNCTION IF EXISTS mps_proof_task(tasks);
DROP FUNCTION IF EXISTS mps_proof_task_row(tasks);
DROP FUNCTION IF EXISTS mps_proof_sha256(jsonb);
DROP TABLE IF EXISTS proof_checkpoints, proof_log, proof_log_head;
DROP FUNCTION IF EXISTS mps_proof_log_append_only();
