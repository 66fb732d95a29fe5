-- 010_roles.sql: database roles and default privileges
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- The application role is created by the platform (with its password) before
-- this job runs; this file only shapes its privileges. No password is ever
-- set here.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_user') THEN
        RAISE EXCEPTION 'role app_user is missing: the platform must create it first';
    END IF;
END
$$;

-- Read-only role for reporting connections (no login by default).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'alga_readonly') THEN
        CREATE ROLE alga_readonly NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO app_user, alga_readonly;
GRANT USAGE ON SCHEMA alga_meta TO app_user;

ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO app_user;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT ON TABLES TO alga_readonly;

GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA alga_meta TO app_user;

-- Sessions of the application role never run longer than this, whatever the
-- client asks for; the chart's database.statementTimeoutMs is lower.
ALTER ROLE app_user SET statement_timeout = '120s';
ALTER ROLE app_user SET idle_in_transaction_session_timeout = '300s';
ALTER ROLE app_user SET lock_timeout = '15s';
