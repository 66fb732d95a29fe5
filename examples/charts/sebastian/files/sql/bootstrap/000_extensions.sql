-- 000_extensions.sql: extensions, schemas and helper functions
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE SCHEMA IF NOT EXISTS alga_meta;

-- Book-keeping of the bootstrap itself: one row per applied file.
CREATE TABLE IF NOT EXISTS alga_meta.bootstrap_log (
    file_name   text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL DEFAULT current_user,
    mode        text        NOT NULL,
    CONSTRAINT bootstrap_log_pkey PRIMARY KEY (file_name, checksum)
);

COMMENT ON TABLE alga_meta.bootstrap_log IS
    'Files applied by the sebastian setup job (bootstrap.mode fresh or recover).';

-- Keeps updated_at current on every UPDATE.
CREATE OR REPLACE FUNCTION alga_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- The tenant of the current session, set by the application with
-- SET LOCAL app.current_tenant = '<uuid>' at the start of each transaction.
CREATE OR REPLACE FUNCTION alga_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('app.current_tenant', true), '')::uuid
$$;

-- Human readable, gap-free numbers per tenant and prefix (TIC-000123).
CREATE TABLE IF NOT EXISTS alga_meta.next_number (
    tenant      uuid    NOT NULL,
    entity_type text    NOT NULL,
    prefix      text    NOT NULL,
    last_number bigint  NOT NULL DEFAULT 0,
    padding     integer NOT NULL DEFAULT 6,
    CONSTRAINT next_number_pkey PRIMARY KEY (tenant, entity_type)
);

CREATE OR REPLACE FUNCTION alga_next_number(p_tenant uuid, p_entity text) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    v_prefix  text;
    v_number  bigint;
    v_padding integer;
BEGIN
    UPDATE alga_meta.next_number
       SET last_number = last_number + 1
     WHERE tenant = p_tenant AND entity_type = p_entity
    RETURNING prefix, last_number, padding INTO v_prefix, v_number, v_padding;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no numbering configured for % in tenant %', p_entity, p_tenant;
    END IF;
    RETURN v_prefix || lpad(v_number::text, v_padding, '0');
END
$$;

-- Refuses to run the bootstrap against a server older than PostgreSQL 14.
DO $$
BEGIN
    IF current_setting('server_version_num')::integer < 140000 THEN
        RAISE EXCEPTION 'Alga PSA needs PostgreSQL 14 or later (found %)',
            current_setting('server_version');
    END IF;
END
$$;
