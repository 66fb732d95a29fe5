-- 095_first_tenant.sql: the first tenant of a fresh install
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- The setup job passes its settings as session variables:
--   alga.bootstrap_tenant_name, alga.bootstrap_currency, alga.bootstrap_locale,
--   alga.bootstrap_time_zone
-- A database that already holds a tenant is left alone, so re-running a fresh
-- bootstrap after a partial failure is safe.
DO $$
DECLARE
    v_tenant uuid;
    v_name   text := coalesce(nullif(current_setting('alga.bootstrap_tenant_name', true), ''), 'Default MSP');
    v_ccy    text := coalesce(nullif(current_setting('alga.bootstrap_currency', true), ''), 'USD');
    v_locale text := coalesce(nullif(current_setting('alga.bootstrap_locale', true), ''), 'en-US');
    v_tz     text := coalesce(nullif(current_setting('alga.bootstrap_time_zone', true), ''), 'UTC');
BEGIN
    SELECT tenant INTO v_tenant FROM tenants ORDER BY created_at LIMIT 1;
    IF v_tenant IS NOT NULL THEN
        RAISE NOTICE 'tenant % already exists; skipping first-tenant creation', v_tenant;
        PERFORM alga_seed_tenant(v_tenant);
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = v_tz) THEN
        RAISE EXCEPTION 'unknown time zone %', v_tz;
    END IF;

    INSERT INTO tenants (company_name, default_currency, default_locale, time_zone)
    VALUES (v_name, v_ccy, v_locale, v_tz)
    RETURNING tenant INTO v_tenant;

    PERFORM alga_seed_tenant(v_tenant);

    INSERT INTO alga_meta.bootstrap_log (file_name, checksum, mode)
    VALUES ('first-tenant:' || v_tenant::text, md5(v_name), 'fresh')
    ON CONFLICT DO NOTHING;

    RAISE NOTICE 'created tenant % (%)', v_name, v_tenant;
END
$$;
