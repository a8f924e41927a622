-- Least privilege for mps-archiver: migrations run as an owner role, the
-- daemon as a role that can only read and write the archive's rows.
--
-- 1. As a superuser, once per cluster:
--      CREATE ROLE mps_archiver_owner LOGIN PASSWORD '...';
--      CREATE ROLE mps_archiver_app   LOGIN PASSWORD '...';
--      CREATE DATABASE mps_archive OWNER mps_archiver_owner;
--    (PostgreSQL 15: the public schema belongs to the database owner, so the
--    owner role can create the archive's tables there.)
-- 2. As mps_archiver_owner, connected to mps_archive, run this file:
--      psql "postgres://mps_archiver_owner@db/mps_archive" -f least-privilege.sql
--    It is idempotent; run it again after `migrate up` if in doubt.
-- 3. Run `mps-archiver migrate up` with DATABASE_URL of mps_archiver_owner,
--    and `mps-archiver sync|serve|report` with DATABASE_URL of
--    mps_archiver_app.

-- Tables and sequences that later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE mps_archiver_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE ON TABLES TO mps_archiver_app;
ALTER DEFAULT PRIVILEGES FOR ROLE mps_archiver_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO mps_archiver_app;

-- Tables that exist already.
GRANT USAGE ON SCHEMA public TO mps_archiver_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO mps_archiver_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO mps_archiver_app;

-- The daemon reads the schema version but never changes it. (Before the
-- first `migrate up` the table does not exist yet; run this file again
-- afterwards.)
DO $$
BEGIN
    IF to_regclass('public.schema_migrations') IS NOT NULL THEN
        REVOKE INSERT, UPDATE ON public.schema_migrations FROM mps_archiver_app;
    END IF;
END $$;
