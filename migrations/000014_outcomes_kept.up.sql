-- Outcomes that are never given up too soon nor guessed (issue: nothing
-- lost, nothing leaked).

-- A detail the failure rule cannot decide (a container of an unknown type,
-- sub-tasks still running when MPS was about to forget it) is recorded as
-- such, never as a success; a later reading replaces it.
ALTER TABLE task_details DROP CONSTRAINT IF EXISTS task_details_outcome_check;
ALTER TABLE task_details ADD CONSTRAINT task_details_outcome_check
    CHECK (outcome IN ('succeeded', 'failed', 'expired', 'undecided'));

-- What earlier versions stored as succeeded while the rule could not say.
UPDATE task_details
   SET outcome = 'undecided'
 WHERE outcome = 'succeeded'
   AND EXISTS (SELECT 1 FROM unnest(ambiguities) a
                WHERE a LIKE 'unknown container type %' OR a LIKE 'no known container %'
                   OR a LIKE '% is still PROCESSING' OR a LIKE '% is still WAITING'
                   OR a = 'detail is not a JSON object');

-- Those MPS may still hold are read again.
INSERT INTO task_detail_queue (task_id, deadline, give_up_at)
SELECT d.task_id, t.create_time + interval '72 hours', t.create_time + interval '168 hours'
  FROM task_details d JOIN tasks t ON t.task_id = d.task_id
 WHERE d.outcome = 'undecided' AND t.create_time > now() - interval '168 hours'
ON CONFLICT DO NOTHING;

-- Jobs earlier versions gave up on after five attempts are retried until
-- MPS forgets them; nothing is claimed by attempt count any more.
UPDATE task_detail_queue SET not_before = '-infinity' WHERE attempts >= 5;

-- A later reading replaces an undecided outcome's sub-tasks: whoever may
-- write them may delete them (named by privilege, as migration 13 does).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
         WHERE table_schema = current_schema() AND table_name = 'task_subtask_results'
           AND privilege_type = 'INSERT' AND grantee <> current_user AND grantee <> 'PUBLIC'
    LOOP
        EXECUTE format('GRANT DELETE ON task_subtask_results TO %I', r.grantee);
    END LOOP;
END $$;

-- Run counters that were logged but not kept.
ALTER TABLE sync_runs
    ADD COLUMN resolved_tasks    integer NOT NULL DEFAULT 0,
    ADD COLUMN gone_tasks        integer NOT NULL DEFAULT 0,
    ADD COLUMN unresolved_tasks  integer NOT NULL DEFAULT 0,
    ADD COLUMN detail_errors     integer NOT NULL DEFAULT 0,
    ADD COLUMN clock_skew_s      integer;

-- Same names and columns: 'unknown' now counts undecided outcomes too (they
-- are not known), and 'gave_up' the details that failed to be read until
-- MPS forgot them, in the last 7 days (nothing is given up sooner).
CREATE OR REPLACE VIEW report_daily_outcomes AS
SELECT (t.create_time AT TIME ZONE 'UTC')::date AS day,
       t.task_type,
       count(*) AS finished,
       count(d.task_id) FILTER (WHERE d.outcome = 'succeeded') AS succeeded,
       count(d.task_id) FILTER (WHERE d.outcome = 'failed') AS failed,
       count(d.task_id) FILTER (WHERE d.outcome = 'expired') AS expired,
       count(*) FILTER (WHERE d.task_id IS NULL OR d.outcome = 'undecided') AS unknown,
       round(count(d.task_id) FILTER (WHERE d.outcome = 'failed')::numeric
             / nullif(count(d.task_id) FILTER (WHERE d.outcome IN ('succeeded', 'failed')), 0), 4) AS failure_rate
  FROM tasks t
  LEFT JOIN task_details d ON d.task_id = t.task_id
 WHERE t.status = 'FINISH' AND t.create_time IS NOT NULL
 GROUP BY 1, 2;

CREATE OR REPLACE VIEW report_detail_backlog AS
SELECT (SELECT count(*) FROM task_detail_queue) AS queued,
       (SELECT count(*) FROM task_detail_queue WHERE deadline < now()) AS overdue,
       (SELECT min(deadline) FROM task_detail_queue) AS oldest_deadline,
       (SELECT count(*) FROM task_details
         WHERE outcome = 'expired' AND err_code = 'gave_up' AND fetched_at > now() - interval '7 days') AS gave_up,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired') AS expired_total,
       (SELECT count(*) FROM task_details WHERE outcome = 'expired' AND fetched_at > now() - interval '7 days') AS expired_last_7_days;

-- Which task time the API's StartTime/EndTime filter on is a finding too
-- (api_capabilities.name = 'time_field').
ALTER TABLE api_capabilities DROP CONSTRAINT IF EXISTS api_capabilities_state_check;
ALTER TABLE api_capabilities ADD CONSTRAINT api_capabilities_state_check
    CHECK (state IN ('supported', 'unsupported', 'ignored', 'create_time', 'finish_time'));
