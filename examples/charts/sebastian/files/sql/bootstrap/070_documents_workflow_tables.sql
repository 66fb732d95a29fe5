-- 070_documents_workflow_tables.sql: Documents, workflows, e-mail providers, notifications, audit
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- documents: Documents and uploaded files.
CREATE TABLE IF NOT EXISTS documents (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    document_id uuid NOT NULL DEFAULT gen_random_uuid(),
    document_name text NOT NULL,
    type_id uuid,
    user_id uuid,
    file_id uuid,
    storage_path text,
    mime_type text,
    file_size bigint,
    content jsonb,
    is_client_visible boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_pkey PRIMARY KEY (tenant, document_id),
    CONSTRAINT documents_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS documents_user_id_idx ON documents (tenant, user_id);
DROP TRIGGER IF EXISTS documents_set_updated_at ON documents;
CREATE TRIGGER documents_set_updated_at BEFORE UPDATE ON documents
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE documents IS 'Documents and uploaded files.';

-- document_associations: Documents attached to tickets, companies, projects and contacts.
CREATE TABLE IF NOT EXISTS document_associations (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    association_id uuid NOT NULL DEFAULT gen_random_uuid(),
    document_id uuid NOT NULL,
    entity_id uuid NOT NULL,
    entity_type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_associations_pkey PRIMARY KEY (tenant, association_id),
    CONSTRAINT document_associations_document_id_fkey FOREIGN KEY (tenant, document_id)
        REFERENCES documents (tenant, document_id)
);
CREATE INDEX IF NOT EXISTS document_associations_document_id_idx ON document_associations (tenant, document_id);
CREATE INDEX IF NOT EXISTS document_associations_entity_idx ON document_associations (tenant, entity_type, entity_id);
COMMENT ON TABLE document_associations IS 'Documents attached to tickets, companies, projects and contacts.';

-- workflow_registrations: Workflow definitions registered with the engine.
CREATE TABLE IF NOT EXISTS workflow_registrations (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    registration_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text,
    category text,
    "version" integer NOT NULL DEFAULT 1,
    definition jsonb NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    "trigger" jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_registrations_pkey PRIMARY KEY (tenant, registration_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS workflow_registrations_name_version_uq ON workflow_registrations (tenant, name, version);
DROP TRIGGER IF EXISTS workflow_registrations_set_updated_at ON workflow_registrations;
CREATE TRIGGER workflow_registrations_set_updated_at BEFORE UPDATE ON workflow_registrations
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE workflow_registrations IS 'Workflow definitions registered with the engine.';

-- workflow_executions: Runs of workflows.
CREATE TABLE IF NOT EXISTS workflow_executions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    execution_id uuid NOT NULL DEFAULT gen_random_uuid(),
    registration_id uuid NOT NULL,
    temporal_workflow_id text,
    temporal_run_id text,
    status text NOT NULL DEFAULT 'running',
    context jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_executions_pkey PRIMARY KEY (tenant, execution_id),
    CONSTRAINT workflow_executions_registration_id_fkey FOREIGN KEY (tenant, registration_id)
        REFERENCES workflow_registrations (tenant, registration_id)
);
CREATE INDEX IF NOT EXISTS workflow_executions_registration_id_idx ON workflow_executions (tenant, registration_id);
DROP TRIGGER IF EXISTS workflow_executions_set_updated_at ON workflow_executions;
CREATE TRIGGER workflow_executions_set_updated_at BEFORE UPDATE ON workflow_executions
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE workflow_executions IS 'Runs of workflows.';

-- workflow_events: Events consumed and produced by workflow executions.
CREATE TABLE IF NOT EXISTS workflow_events (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    execution_id uuid,
    event_name text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    source text,
    processed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_events_pkey PRIMARY KEY (tenant, event_id),
    CONSTRAINT workflow_events_execution_id_fkey FOREIGN KEY (tenant, execution_id)
        REFERENCES workflow_executions (tenant, execution_id)
);
CREATE INDEX IF NOT EXISTS workflow_events_execution_id_idx ON workflow_events (tenant, execution_id);
CREATE INDEX IF NOT EXISTS workflow_events_unprocessed_idx ON workflow_events (tenant, created_at) WHERE NOT processed;
COMMENT ON TABLE workflow_events IS 'Events consumed and produced by workflow executions.';

-- email_providers: Inbound mailboxes connected to the email service.
CREATE TABLE IF NOT EXISTS email_providers (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    provider_id uuid NOT NULL DEFAULT gen_random_uuid(),
    provider_type text NOT NULL,
    provider_name text NOT NULL,
    mailbox text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    status text NOT NULL DEFAULT 'configuring',
    last_sync_at timestamptz,
    error_message text,
    inbound_ticket_defaults jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_providers_pkey PRIMARY KEY (tenant, provider_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS email_providers_mailbox_uq ON email_providers (tenant, mailbox);
DROP TRIGGER IF EXISTS email_providers_set_updated_at ON email_providers;
CREATE TRIGGER email_providers_set_updated_at BEFORE UPDATE ON email_providers
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE email_providers IS 'Inbound mailboxes connected to the email service.';

-- notifications: In-app notifications.
CREATE TABLE IF NOT EXISTS notifications (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    notification_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    template_name text NOT NULL,
    title text NOT NULL,
    message text,
    link text,
    is_read boolean NOT NULL DEFAULT false,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_pkey PRIMARY KEY (tenant, notification_id),
    CONSTRAINT notifications_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS notifications_user_id_idx ON notifications (tenant, user_id);
CREATE INDEX IF NOT EXISTS notifications_unread_idx ON notifications (tenant, user_id, created_at DESC) WHERE NOT is_read;
COMMENT ON TABLE notifications IS 'In-app notifications.';

-- audit_logs: Append-only audit trail of changes.
CREATE TABLE IF NOT EXISTS audit_logs (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    audit_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid,
    operation text NOT NULL,
    table_name text NOT NULL,
    record_id text NOT NULL,
    changed_data jsonb,
    details jsonb,
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_logs_pkey PRIMARY KEY (tenant, audit_id)
);
CREATE INDEX IF NOT EXISTS audit_logs_record_idx ON audit_logs (tenant, table_name, record_id);
CREATE INDEX IF NOT EXISTS audit_logs_timestamp_idx ON audit_logs (tenant, "timestamp" DESC);
COMMENT ON TABLE audit_logs IS 'Append-only audit trail of changes.';
