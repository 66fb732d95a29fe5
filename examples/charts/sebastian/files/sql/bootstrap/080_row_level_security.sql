-- 080_row_level_security.sql: tenant isolation policies
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- Every tenant-scoped table only shows rows of alga_current_tenant() to the
-- application role. The owner role (used by this job) bypasses RLS.
DO $$
DECLARE
    v_table text;
    v_tables text[] := ARRAY[
        'users',
        'roles',
        'permissions',
        'role_permissions',
        'user_roles',
        'teams',
        'api_keys',
        'companies',
        'company_locations',
        'contacts',
        'tags',
        'tag_mappings',
        'interactions',
        'boards',
        'statuses',
        'priorities',
        'categories',
        'sla_policies',
        'sla_targets',
        'tickets',
        'comments',
        'ticket_resources',
        'projects',
        'project_phases',
        'project_tasks',
        'task_dependencies',
        'time_periods',
        'time_sheets',
        'time_entries',
        'schedule_entries',
        'service_types',
        'tax_regions',
        'tax_rates',
        'service_catalog',
        'contracts',
        'contract_lines',
        'invoices',
        'invoice_items',
        'payments',
        'usage_tracking',
        'documents',
        'document_associations',
        'workflow_registrations',
        'workflow_executions',
        'workflow_events',
        'email_providers',
        'notifications',
        'audit_logs'
    ];
BEGIN
    FOREACH v_table IN ARRAY v_tables LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', v_table);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant = alga_current_tenant()) '
            'WITH CHECK (tenant = alga_current_tenant())', v_table);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO app_user', v_table);
        EXECUTE format('GRANT SELECT ON %I TO alga_readonly', v_table);
    END LOOP;
END
$$;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_self ON tenants;
CREATE POLICY tenant_self ON tenants USING (tenant = alga_current_tenant());
GRANT SELECT, UPDATE ON tenants TO app_user;
