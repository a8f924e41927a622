-- Whoever may queue a task for its detail may take it off the queue when the
-- detail is stored: the daemon's role (deploy/postgres/least-privilege.sql
-- grants it INSERT but, table by table, no DELETE) could not dequeue. Named
-- by what it may do, not by role name, so any role layout gets the grant.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
         WHERE table_schema = current_schema() AND table_name = 'task_detail_queue'
           AND privilege_type = 'INSERT' AND grantee <> current_user AND grantee <> 'PUBLIC'
    LOOP
        EXECUTE format('GRANT DELETE ON task_detail_queue TO %I', r.grantee);
    END LOOP;
END $$;
