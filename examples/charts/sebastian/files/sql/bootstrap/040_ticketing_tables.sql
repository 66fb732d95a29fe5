-- 040_ticketing_tables.sql: Ticketing tables: boards, statuses, priorities, SLAs, tickets
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- boards: Ticket boards (queues).
CREATE TABLE IF NOT EXISTS boards (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    board_id uuid NOT NULL DEFAULT gen_random_uuid(),
    board_name text NOT NULL,
    description text,
    display_order integer NOT NULL DEFAULT 0,
    is_default boolean NOT NULL DEFAULT false,
    is_inactive boolean NOT NULL DEFAULT false,
    default_assigned_to uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT boards_pkey PRIMARY KEY (tenant, board_id),
    CONSTRAINT boards_default_assigned_to_fkey FOREIGN KEY (tenant, default_assigned_to)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS boards_default_assigned_to_idx ON boards (tenant, default_assigned_to);
DROP TRIGGER IF EXISTS boards_set_updated_at ON boards;
CREATE TRIGGER boards_set_updated_at BEFORE UPDATE ON boards
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE boards IS 'Ticket boards (queues).';

-- statuses: Statuses of tickets, projects and tasks.
CREATE TABLE IF NOT EXISTS statuses (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    status_id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    status_type text NOT NULL,
    order_number integer NOT NULL DEFAULT 0,
    is_closed boolean NOT NULL DEFAULT false,
    is_default boolean NOT NULL DEFAULT false,
    color text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT statuses_pkey PRIMARY KEY (tenant, status_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS statuses_name_type_uq ON statuses (tenant, status_type, name);
DROP TRIGGER IF EXISTS statuses_set_updated_at ON statuses;
CREATE TRIGGER statuses_set_updated_at BEFORE UPDATE ON statuses
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE statuses IS 'Statuses of tickets, projects and tasks.';

-- priorities: Ticket priorities.
CREATE TABLE IF NOT EXISTS priorities (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    priority_id uuid NOT NULL DEFAULT gen_random_uuid(),
    priority_name text NOT NULL,
    order_number integer NOT NULL DEFAULT 0,
    color text,
    item_type text NOT NULL DEFAULT 'ticket',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT priorities_pkey PRIMARY KEY (tenant, priority_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS priorities_name_uq ON priorities (tenant, item_type, priority_name);
DROP TRIGGER IF EXISTS priorities_set_updated_at ON priorities;
CREATE TRIGGER priorities_set_updated_at BEFORE UPDATE ON priorities
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE priorities IS 'Ticket priorities.';

-- categories: Ticket categories and sub-categories.
CREATE TABLE IF NOT EXISTS categories (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    category_id uuid NOT NULL DEFAULT gen_random_uuid(),
    category_name text NOT NULL,
    parent_category uuid,
    board_id uuid,
    display_order integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT categories_pkey PRIMARY KEY (tenant, category_id),
    CONSTRAINT categories_parent_category_fkey FOREIGN KEY (tenant, parent_category)
        REFERENCES categories (tenant, category_id),
    CONSTRAINT categories_board_id_fkey FOREIGN KEY (tenant, board_id)
        REFERENCES boards (tenant, board_id)
);
CREATE INDEX IF NOT EXISTS categories_parent_category_idx ON categories (tenant, parent_category);
CREATE INDEX IF NOT EXISTS categories_board_id_idx ON categories (tenant, board_id);
DROP TRIGGER IF EXISTS categories_set_updated_at ON categories;
CREATE TRIGGER categories_set_updated_at BEFORE UPDATE ON categories
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE categories IS 'Ticket categories and sub-categories.';

-- sla_policies: Service level agreement policies.
CREATE TABLE IF NOT EXISTS sla_policies (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    sla_policy_id uuid NOT NULL DEFAULT gen_random_uuid(),
    policy_name text NOT NULL,
    description text,
    is_default boolean NOT NULL DEFAULT false,
    business_hours_only boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sla_policies_pkey PRIMARY KEY (tenant, sla_policy_id)
);
DROP TRIGGER IF EXISTS sla_policies_set_updated_at ON sla_policies;
CREATE TRIGGER sla_policies_set_updated_at BEFORE UPDATE ON sla_policies
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE sla_policies IS 'Service level agreement policies.';

-- sla_targets: Response and resolution targets per priority.
CREATE TABLE IF NOT EXISTS sla_targets (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    sla_target_id uuid NOT NULL DEFAULT gen_random_uuid(),
    sla_policy_id uuid NOT NULL,
    priority_id uuid NOT NULL,
    response_minutes integer NOT NULL,
    resolution_minutes integer NOT NULL,
    escalate_after_percent integer NOT NULL DEFAULT 80,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sla_targets_pkey PRIMARY KEY (tenant, sla_target_id),
    CONSTRAINT sla_targets_sla_policy_id_fkey FOREIGN KEY (tenant, sla_policy_id)
        REFERENCES sla_policies (tenant, sla_policy_id),
    CONSTRAINT sla_targets_priority_id_fkey FOREIGN KEY (tenant, priority_id)
        REFERENCES priorities (tenant, priority_id)
);
CREATE INDEX IF NOT EXISTS sla_targets_sla_policy_id_idx ON sla_targets (tenant, sla_policy_id);
CREATE INDEX IF NOT EXISTS sla_targets_priority_id_idx ON sla_targets (tenant, priority_id);
DROP TRIGGER IF EXISTS sla_targets_set_updated_at ON sla_targets;
CREATE TRIGGER sla_targets_set_updated_at BEFORE UPDATE ON sla_targets
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE sla_targets IS 'Response and resolution targets per priority.';

-- tickets: Service tickets.
CREATE TABLE IF NOT EXISTS tickets (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    ticket_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_number text NOT NULL,
    title text NOT NULL,
    url text,
    board_id uuid NOT NULL,
    company_id uuid,
    contact_name_id uuid,
    status_id uuid NOT NULL,
    priority_id uuid,
    category_id uuid,
    subcategory_id uuid,
    entered_by uuid,
    assigned_to uuid,
    sla_policy_id uuid,
    response_due_at timestamptz,
    resolution_due_at timestamptz,
    first_responded_at timestamptz,
    closed_at timestamptz,
    closed_by uuid,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    search_vector tsvector,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_pkey PRIMARY KEY (tenant, ticket_id),
    CONSTRAINT tickets_board_id_fkey FOREIGN KEY (tenant, board_id)
        REFERENCES boards (tenant, board_id),
    CONSTRAINT tickets_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id),
    CONSTRAINT tickets_contact_name_id_fkey FOREIGN KEY (tenant, contact_name_id)
        REFERENCES contacts (tenant, contact_name_id),
    CONSTRAINT tickets_status_id_fkey FOREIGN KEY (tenant, status_id)
        REFERENCES statuses (tenant, status_id),
    CONSTRAINT tickets_priority_id_fkey FOREIGN KEY (tenant, priority_id)
        REFERENCES priorities (tenant, priority_id),
    CONSTRAINT tickets_category_id_fkey FOREIGN KEY (tenant, category_id)
        REFERENCES categories (tenant, category_id),
    CONSTRAINT tickets_subcategory_id_fkey FOREIGN KEY (tenant, subcategory_id)
        REFERENCES categories (tenant, category_id),
    CONSTRAINT tickets_entered_by_fkey FOREIGN KEY (tenant, entered_by)
        REFERENCES users (tenant, user_id),
    CONSTRAINT tickets_assigned_to_fkey FOREIGN KEY (tenant, assigned_to)
        REFERENCES users (tenant, user_id),
    CONSTRAINT tickets_closed_by_fkey FOREIGN KEY (tenant, closed_by)
        REFERENCES users (tenant, user_id),
    CONSTRAINT tickets_sla_policy_id_fkey FOREIGN KEY (tenant, sla_policy_id)
        REFERENCES sla_policies (tenant, sla_policy_id)
);
CREATE INDEX IF NOT EXISTS tickets_board_id_idx ON tickets (tenant, board_id);
CREATE INDEX IF NOT EXISTS tickets_company_id_idx ON tickets (tenant, company_id);
CREATE INDEX IF NOT EXISTS tickets_contact_name_id_idx ON tickets (tenant, contact_name_id);
CREATE INDEX IF NOT EXISTS tickets_status_id_idx ON tickets (tenant, status_id);
CREATE INDEX IF NOT EXISTS tickets_priority_id_idx ON tickets (tenant, priority_id);
CREATE INDEX IF NOT EXISTS tickets_category_id_idx ON tickets (tenant, category_id);
CREATE INDEX IF NOT EXISTS tickets_subcategory_id_idx ON tickets (tenant, subcategory_id);
CREATE INDEX IF NOT EXISTS tickets_entered_by_idx ON tickets (tenant, entered_by);
CREATE INDEX IF NOT EXISTS tickets_assigned_to_idx ON tickets (tenant, assigned_to);
CREATE INDEX IF NOT EXISTS tickets_closed_by_idx ON tickets (tenant, closed_by);
CREATE INDEX IF NOT EXISTS tickets_sla_policy_id_idx ON tickets (tenant, sla_policy_id);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_number_uq ON tickets (tenant, ticket_number);
CREATE INDEX IF NOT EXISTS tickets_open_idx ON tickets (tenant, status_id, updated_at DESC);
CREATE INDEX IF NOT EXISTS tickets_search_idx ON tickets USING gin (search_vector);
DROP TRIGGER IF EXISTS tickets_set_updated_at ON tickets;
CREATE TRIGGER tickets_set_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE tickets IS 'Service tickets.';

-- comments: Ticket comments, internal notes and e-mail replies.
CREATE TABLE IF NOT EXISTS comments (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    comment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL,
    user_id uuid,
    contact_name_id uuid,
    note text NOT NULL,
    is_internal boolean NOT NULL DEFAULT false,
    is_resolution boolean NOT NULL DEFAULT false,
    author_type text NOT NULL DEFAULT 'internal',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT comments_pkey PRIMARY KEY (tenant, comment_id),
    CONSTRAINT comments_ticket_id_fkey FOREIGN KEY (tenant, ticket_id)
        REFERENCES tickets (tenant, ticket_id),
    CONSTRAINT comments_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id),
    CONSTRAINT comments_contact_name_id_fkey FOREIGN KEY (tenant, contact_name_id)
        REFERENCES contacts (tenant, contact_name_id)
);
CREATE INDEX IF NOT EXISTS comments_ticket_id_idx ON comments (tenant, ticket_id);
CREATE INDEX IF NOT EXISTS comments_user_id_idx ON comments (tenant, user_id);
CREATE INDEX IF NOT EXISTS comments_contact_name_id_idx ON comments (tenant, contact_name_id);
DROP TRIGGER IF EXISTS comments_set_updated_at ON comments;
CREATE TRIGGER comments_set_updated_at BEFORE UPDATE ON comments
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE comments IS 'Ticket comments, internal notes and e-mail replies.';

-- ticket_resources: Additional technicians working a ticket.
CREATE TABLE IF NOT EXISTS ticket_resources (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    assignment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ticket_id uuid NOT NULL,
    assigned_to uuid NOT NULL,
    additional_user_id uuid NOT NULL,
    "role" text,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_resources_pkey PRIMARY KEY (tenant, assignment_id),
    CONSTRAINT ticket_resources_ticket_id_fkey FOREIGN KEY (tenant, ticket_id)
        REFERENCES tickets (tenant, ticket_id),
    CONSTRAINT ticket_resources_assigned_to_fkey FOREIGN KEY (tenant, assigned_to)
        REFERENCES users (tenant, user_id),
    CONSTRAINT ticket_resources_additional_user_id_fkey FOREIGN KEY (tenant, additional_user_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS ticket_resources_ticket_id_idx ON ticket_resources (tenant, ticket_id);
CREATE INDEX IF NOT EXISTS ticket_resources_assigned_to_idx ON ticket_resources (tenant, assigned_to);
CREATE INDEX IF NOT EXISTS ticket_resources_additional_user_id_idx ON ticket_resources (tenant, additional_user_id);
COMMENT ON TABLE ticket_resources IS 'Additional technicians working a ticket.';
