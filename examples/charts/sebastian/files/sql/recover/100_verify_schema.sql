-- 100_verify_schema.sql: checks a restored database before the server starts
--
-- Applied by the sebastian setup job with bootstrap.mode=recover. It never
-- changes data; it reports what is missing. With bootstrap.strictRecover=true
-- the job fails when any check reports a problem.

CREATE TEMP TABLE recover_findings (
    severity text NOT NULL,
    check_name text NOT NULL,
    detail text NOT NULL
) ON COMMIT PRESERVE ROWS;

DO $$
DECLARE
    v_missing text;
    v_expected text[] := ARRAY[
        'tenants',
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
    FOREACH v_missing IN ARRAY v_expected LOOP
        IF to_regclass('public.' || v_missing) IS NULL THEN
            INSERT INTO recover_findings VALUES ('error', 'table-missing', v_missing);
        END IF;
    END LOOP;
END
$$;

-- Row level security must be on for every tenant-scoped table.
INSERT INTO recover_findings
SELECT 'error', 'rls-disabled', c.relname
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public'
   AND c.relkind = 'r'
   AND NOT c.relrowsecurity
   AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant' AND NOT a.attisdropped)
   AND c.relname <> 'tenants';

-- Every tenant needs its numbering rows.
INSERT INTO recover_findings
SELECT 'warning', 'numbering-missing', t.tenant::text || ':' || e.entity_type
  FROM tenants t
 CROSS JOIN (VALUES ('TICKET'), ('PROJECT'), ('INVOICE')) AS e(entity_type)
 WHERE NOT EXISTS (SELECT 1 FROM alga_meta.next_number nn
                    WHERE nn.tenant = t.tenant AND nn.entity_type = e.entity_type);

-- Numbering must be ahead of the highest number in use.
INSERT INTO recover_findings
SELECT 'error', 'ticket-numbering-behind', nn.tenant::text
  FROM alga_meta.next_number nn
 WHERE nn.entity_type = 'TICKET'
   AND nn.last_number < (SELECT coalesce(max(nullif(regexp_replace(ticket_number, '\D', '', 'g'), '')::bigint), 0)
                           FROM tickets tk WHERE tk.tenant = nn.tenant);

-- Invalid indexes left behind by an interrupted CREATE INDEX CONCURRENTLY.
INSERT INTO recover_findings
SELECT 'warning', 'invalid-index', i.indexrelid::regclass::text
  FROM pg_index i
 WHERE NOT i.indisvalid;

-- Foreign keys that were restored NOT VALID.
INSERT INTO recover_findings
SELECT 'warning', 'constraint-not-validated', conrelid::regclass::text || '.' || conname
  FROM pg_constraint
 WHERE contype = 'f' AND NOT convalidated;

SELECT severity, check_name, detail FROM recover_findings ORDER BY severity, check_name, detail;
