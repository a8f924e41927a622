-- Least privilege for mps-archiver: migrations run as an owner role, the
-- daemon as a role that can only read and write the archive's rows, and
-- people and dashboards as a reader that can only read.
--
-- 1. As a superuser, once per cluster:
--      CREATE ROLE mps_archiver_owner  LOGIN PASSWORD '...';
--      CREATE ROLE mps_archiver_app    LOGIN PASSWORD '...';
--      CREATE ROLE mps_archiver_reader NOLOGIN;   -- a group: GRANT mps_archiver_reader TO alice, grafana;
--      CREATE DATABASE mps_archive OWNER mps_archiver_owner;
--    (PostgreSQL 15: the public schema belongs to the database owner, so the
--    owner role can create the archive's tables there.)
-- 2. As mps_archiver_owner, connected to mps_archive, run this file, before
--    or after the first `migrate up` (it is idempotent):
--      psql -v ON_ERROR_STOP=1 "postgres://mps_archiver_owner@db/mps_archive" -f least-privilege.sql
-- 3. Run `mps-archiver migrate up` with DATABASE_URL of mps_archiver_owner,
--    and `mps-archiver sync|serve|report` with DATABASE_URL of
--    mps_archiver_app.
--
-- Grants are made once, here: tables and views that later migrations create
-- (or drop and create again) get them from the default privileges below, so
-- upgrades keep every role's access without running this file again.

-- golang-migrate's version table, created here as `migrate up` would create
-- it, so that the app role can be kept from changing it whatever the order.
CREATE TABLE IF NOT EXISTS public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);

-- The daemon: reads and writes rows. It deletes only from its work queue.
ALTER DEFAULT PRIVILEGES FOR ROLE mps_archiver_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE ON TABLES TO mps_archiver_app;
ALTER DEFAULT PRIVILEGES FOR ROLE mps_archiver_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO mps_archiver_app;
GRANT USAGE ON SCHEMA public TO mps_archiver_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO mps_archiver_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO mps_archiver_app;
-- It reads the schema version but never changes it.
REVOKE INSERT, UPDATE, DELETE ON public.schema_migrations FROM mps_archiver_app;
-- A captured detail leaves the queue (migration 9 creates the table; until
-- then there is nothing to grant).
DO $$
BEGIN
    IF to_regclass('public.task_detail_queue') IS NOT NULL THEN
        GRANT DELETE ON public.task_detail_queue TO mps_archiver_app;
    END IF;
    -- A later reading replaces an undecided outcome's sub-task results.
    IF to_regclass('public.task_subtask_results') IS NOT NULL THEN
        GRANT DELETE ON public.task_subtask_results TO mps_archiver_app;
    END IF;
    -- Every run makes the coming months' partitions (migration 16; the
    -- function runs as the owner, and only the roles granted it may call it).
    IF to_regprocedure('public.mps_maintain_partitions(integer)') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION public.mps_maintain_partitions(integer) TO mps_archiver_app;
    END IF;
    -- The media facts are written by a trigger, as the owner (migration 17):
    -- the daemon only reads them.
    IF to_regclass('public.task_outputs') IS NOT NULL THEN
        REVOKE INSERT, UPDATE ON public.task_outputs, public.task_inputs FROM mps_archiver_app;
    END IF;
END $$;

-- Readers (people, Grafana, BI tools): SELECT on every table and view, now
-- and after every migration. Skipped, with a notice, where the role is not
-- created yet: create it (step 1) and run this file again.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_reader') THEN
        EXECUTE 'ALTER DEFAULT PRIVILEGES FOR ROLE mps_archiver_owner IN SCHEMA public GRANT SELECT ON TABLES TO mps_archiver_reader';
        EXECUTE 'GRANT USAGE ON SCHEMA public TO mps_archiver_reader';
        EXECUTE 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO mps_archiver_reader';
    ELSE
        RAISE NOTICE 'role mps_archiver_reader does not exist: no read-only access granted';
    END IF;
END $$;
