-- 090_reference_data.sql: per-tenant reference data
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.


-- alga_seed_tenant() fills a tenant with the reference data every MSP
-- starts with. It is safe to call again: existing rows are left alone.

CREATE OR REPLACE FUNCTION alga_seed_tenant(p_tenant uuid) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    v_role uuid;
    v_policy uuid;
    v_parent uuid;
BEGIN
    PERFORM set_config('app.current_tenant', p_tenant::text, true);

    -- Numbering of tickets, projects and invoices.
    INSERT INTO alga_meta.next_number (tenant, entity_type, prefix, padding) VALUES
        (p_tenant, 'TICKET', 'TIC-', 6),
        (p_tenant, 'PROJECT', 'PRJ-', 4),
        (p_tenant, 'INVOICE', 'INV-', 6)
    ON CONFLICT (tenant, entity_type) DO NOTHING;

    -- Permissions: every resource/action pair; client portal roles may only
    -- be granted the pairs marked client.
    INSERT INTO permissions (tenant, resource, action, msp, client, description)
    SELECT p_tenant, r.resource, a.action, true,
           (r.resource || ':' || a.action) = ANY (ARRAY[
               'ticket:create',
               'ticket:read',
               'ticket:update',
               'comment:create',
               'comment:read',
               'invoice:read',
               'document:read',
               'document:create',
               'project:read',
               'contact:read',
               'contact:update',
               'knowledge_base:read',
               'survey:read',
               'survey:create'
           ]),
           initcap(a.action) || ' ' || replace(r.resource, '_', ' ') || ' records'
      FROM unnest(ARRAY[
               'ticket',
               'comment',
               'company',
               'contact',
               'project',
               'project_task',
               'timeentry',
               'timesheet',
               'invoice',
               'billing_settings',
               'contract',
               'service',
               'asset',
               'document',
               'user',
               'role',
               'team',
               'settings',
               'workflow',
               'email_provider',
               'report',
               'tag',
               'schedule',
               'interaction',
               'knowledge_base',
               'survey',
               'api_key',
               'audit_log'
           ]) AS r(resource)
     CROSS JOIN unnest(ARRAY['create', 'read', 'update', 'delete']) AS a(action)
    ON CONFLICT (tenant, resource, action) DO NOTHING;

    -- System roles and their grants.
    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Admin', 'Seeded admin role', true, false, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Admin';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id
      FROM permissions p
     WHERE p.tenant = p_tenant AND p.msp
    ON CONFLICT DO NOTHING;

    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Manager', 'Seeded manager role', true, false, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Manager';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id
      FROM permissions p
     WHERE p.tenant = p_tenant AND p.msp
       AND p.resource IN ('ticket', 'comment', 'company', 'contact', 'project', 'project_task', 'timeentry', 'timesheet', 'invoice', 'billing_settings', 'contract', 'service', 'asset', 'document', 'user', 'team', 'workflow', 'email_provider', 'report', 'tag', 'schedule', 'interaction', 'knowledge_base', 'survey')
    ON CONFLICT DO NOTHING;

    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Technician', 'Seeded technician role', true, false, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Technician';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id
      FROM permissions p
     WHERE p.tenant = p_tenant AND p.msp
       AND p.resource IN ('ticket', 'comment', 'timeentry', 'timesheet', 'schedule', 'document', 'asset', 'interaction', 'knowledge_base', 'project_task', 'tag')
    ON CONFLICT DO NOTHING;

    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Dispatcher', 'Seeded dispatcher role', true, false, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Dispatcher';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id
      FROM permissions p
     WHERE p.tenant = p_tenant AND p.msp
       AND p.resource IN ('ticket', 'schedule', 'comment', 'contact', 'company')
    ON CONFLICT DO NOTHING;

    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Finance', 'Seeded finance role', true, false, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Finance';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id
      FROM permissions p
     WHERE p.tenant = p_tenant AND p.msp
       AND p.resource IN ('invoice', 'billing_settings', 'contract', 'service', 'report', 'timeentry')
    ON CONFLICT DO NOTHING;

    INSERT INTO roles (tenant, role_name, description, msp, client, is_system)
    VALUES (p_tenant, 'Client User', 'Default client portal role', false, true, true)
    ON CONFLICT (tenant, role_name) DO NOTHING;
    SELECT role_id INTO v_role FROM roles WHERE tenant = p_tenant AND role_name = 'Client User';
    INSERT INTO role_permissions (tenant, role_id, permission_id)
    SELECT p_tenant, v_role, p.permission_id FROM permissions p
     WHERE p.tenant = p_tenant AND p.client
    ON CONFLICT DO NOTHING;

    -- Statuses.
    INSERT INTO statuses (tenant, status_type, name, order_number, is_closed, is_default, color) VALUES
        (p_tenant, 'ticket', 'New', 1, false, true, '#3B82F6'),
        (p_tenant, 'ticket', 'Open', 2, false, false, '#0EA5E9'),
        (p_tenant, 'ticket', 'In Progress', 3, false, false, '#8B5CF6'),
        (p_tenant, 'ticket', 'Waiting on Client', 4, false, false, '#F59E0B'),
        (p_tenant, 'ticket', 'Waiting on Vendor', 5, false, false, '#F97316'),
        (p_tenant, 'ticket', 'Scheduled', 6, false, false, '#14B8A6'),
        (p_tenant, 'ticket', 'Resolved', 7, true, false, '#22C55E'),
        (p_tenant, 'ticket', 'Closed', 8, true, false, '#64748B'),
        (p_tenant, 'project', 'Planning', 1, false, true, '#3B82F6'),
        (p_tenant, 'project', 'Active', 2, false, false, '#22C55E'),
        (p_tenant, 'project', 'On Hold', 3, false, false, '#F59E0B'),
        (p_tenant, 'project', 'Completed', 4, true, false, '#64748B'),
        (p_tenant, 'project', 'Cancelled', 5, true, false, '#EF4444'),
        (p_tenant, 'project_task', 'To Do', 1, false, true, '#94A3B8'),
        (p_tenant, 'project_task', 'In Progress', 2, false, false, '#8B5CF6'),
        (p_tenant, 'project_task', 'Blocked', 3, false, false, '#EF4444'),
        (p_tenant, 'project_task', 'In Review', 4, false, false, '#0EA5E9'),
        (p_tenant, 'project_task', 'Done', 5, true, false, '#22C55E')
    ON CONFLICT (tenant, status_type, name) DO NOTHING;

    -- Priorities.
    INSERT INTO priorities (tenant, priority_name, order_number, color) VALUES
        (p_tenant, 'Critical', 1, '#DC2626'),
        (p_tenant, 'High', 2, '#F97316'),
        (p_tenant, 'Medium', 3, '#EAB308'),
        (p_tenant, 'Low', 4, '#22C55E'),
        (p_tenant, 'Planning', 5, '#64748B')
    ON CONFLICT (tenant, item_type, priority_name) DO NOTHING;

    -- Boards.
    INSERT INTO boards (tenant, board_name, description, is_default)
    SELECT p_tenant, 'General Support', 'Default queue for new requests.', true
     WHERE NOT EXISTS (SELECT 1 FROM boards WHERE tenant = p_tenant AND board_name = 'General Support');
    INSERT INTO boards (tenant, board_name, description, is_default)
    SELECT p_tenant, 'Projects', 'Work tracked against client projects.', false
     WHERE NOT EXISTS (SELECT 1 FROM boards WHERE tenant = p_tenant AND board_name = 'Projects');
    INSERT INTO boards (tenant, board_name, description, is_default)
    SELECT p_tenant, 'Onboarding', 'New client and new user onboarding.', false
     WHERE NOT EXISTS (SELECT 1 FROM boards WHERE tenant = p_tenant AND board_name = 'Onboarding');
    INSERT INTO boards (tenant, board_name, description, is_default)
    SELECT p_tenant, 'Alerts', 'Tickets raised by monitoring and RMM alerts.', false
     WHERE NOT EXISTS (SELECT 1 FROM boards WHERE tenant = p_tenant AND board_name = 'Alerts');
    INSERT INTO boards (tenant, board_name, description, is_default)
    SELECT p_tenant, 'Procurement', 'Hardware and licence orders.', false
     WHERE NOT EXISTS (SELECT 1 FROM boards WHERE tenant = p_tenant AND board_name = 'Procurement');

    -- Categories and sub-categories.
    INSERT INTO categories (tenant, category_name, display_order)
    SELECT p_tenant, 'Hardware', 0
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Hardware' AND parent_category IS NULL);
    SELECT category_id INTO v_parent FROM categories
     WHERE tenant = p_tenant AND category_name = 'Hardware' AND parent_category IS NULL;
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Laptop', v_parent, 1
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Laptop' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Desktop', v_parent, 2
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Desktop' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Printer', v_parent, 3
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Printer' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Network device', v_parent, 4
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Network device' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Mobile', v_parent, 5
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Mobile' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, display_order)
    SELECT p_tenant, 'Software', 0
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Software' AND parent_category IS NULL);
    SELECT category_id INTO v_parent FROM categories
     WHERE tenant = p_tenant AND category_name = 'Software' AND parent_category IS NULL;
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Microsoft 365', v_parent, 1
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Microsoft 365' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Line of business', v_parent, 2
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Line of business' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Operating system', v_parent, 3
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Operating system' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Browser', v_parent, 4
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Browser' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, display_order)
    SELECT p_tenant, 'Accounts', 0
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Accounts' AND parent_category IS NULL);
    SELECT category_id INTO v_parent FROM categories
     WHERE tenant = p_tenant AND category_name = 'Accounts' AND parent_category IS NULL;
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Password reset', v_parent, 1
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Password reset' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'New user', v_parent, 2
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'New user' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Leaver', v_parent, 3
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Leaver' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Permissions', v_parent, 4
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Permissions' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, display_order)
    SELECT p_tenant, 'Network', 0
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Network' AND parent_category IS NULL);
    SELECT category_id INTO v_parent FROM categories
     WHERE tenant = p_tenant AND category_name = 'Network' AND parent_category IS NULL;
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Internet outage', v_parent, 1
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Internet outage' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'VPN', v_parent, 2
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'VPN' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Wi-Fi', v_parent, 3
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Wi-Fi' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Firewall', v_parent, 4
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Firewall' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, display_order)
    SELECT p_tenant, 'Security', 0
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Security' AND parent_category IS NULL);
    SELECT category_id INTO v_parent FROM categories
     WHERE tenant = p_tenant AND category_name = 'Security' AND parent_category IS NULL;
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Phishing', v_parent, 1
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Phishing' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Malware', v_parent, 2
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Malware' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Suspicious sign-in', v_parent, 3
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Suspicious sign-in' AND parent_category = v_parent);
    INSERT INTO categories (tenant, category_name, parent_category, display_order)
    SELECT p_tenant, 'Backup', v_parent, 4
     WHERE NOT EXISTS (SELECT 1 FROM categories WHERE tenant = p_tenant
                          AND category_name = 'Backup' AND parent_category = v_parent);

    -- Default SLA policy with targets per priority.
    INSERT INTO sla_policies (tenant, policy_name, description, is_default)
    SELECT p_tenant, 'Standard', 'Default response and resolution targets', true
     WHERE NOT EXISTS (SELECT 1 FROM sla_policies WHERE tenant = p_tenant AND policy_name = 'Standard');
    SELECT sla_policy_id INTO v_policy FROM sla_policies WHERE tenant = p_tenant AND policy_name = 'Standard';
    INSERT INTO sla_targets (tenant, sla_policy_id, priority_id, response_minutes, resolution_minutes)
    SELECT p_tenant, v_policy, pr.priority_id, 15, 240
      FROM priorities pr WHERE pr.tenant = p_tenant AND pr.priority_name = 'Critical'
       AND NOT EXISTS (SELECT 1 FROM sla_targets t WHERE t.tenant = p_tenant
                          AND t.sla_policy_id = v_policy AND t.priority_id = pr.priority_id);
    INSERT INTO sla_targets (tenant, sla_policy_id, priority_id, response_minutes, resolution_minutes)
    SELECT p_tenant, v_policy, pr.priority_id, 60, 480
      FROM priorities pr WHERE pr.tenant = p_tenant AND pr.priority_name = 'High'
       AND NOT EXISTS (SELECT 1 FROM sla_targets t WHERE t.tenant = p_tenant
                          AND t.sla_policy_id = v_policy AND t.priority_id = pr.priority_id);
    INSERT INTO sla_targets (tenant, sla_policy_id, priority_id, response_minutes, resolution_minutes)
    SELECT p_tenant, v_policy, pr.priority_id, 240, 1440
      FROM priorities pr WHERE pr.tenant = p_tenant AND pr.priority_name = 'Medium'
       AND NOT EXISTS (SELECT 1 FROM sla_targets t WHERE t.tenant = p_tenant
                          AND t.sla_policy_id = v_policy AND t.priority_id = pr.priority_id);
    INSERT INTO sla_targets (tenant, sla_policy_id, priority_id, response_minutes, resolution_minutes)
    SELECT p_tenant, v_policy, pr.priority_id, 480, 4320
      FROM priorities pr WHERE pr.tenant = p_tenant AND pr.priority_name = 'Low'
       AND NOT EXISTS (SELECT 1 FROM sla_targets t WHERE t.tenant = p_tenant
                          AND t.sla_policy_id = v_policy AND t.priority_id = pr.priority_id);
    INSERT INTO sla_targets (tenant, sla_policy_id, priority_id, response_minutes, resolution_minutes)
    SELECT p_tenant, v_policy, pr.priority_id, 1440, 10080
      FROM priorities pr WHERE pr.tenant = p_tenant AND pr.priority_name = 'Planning'
       AND NOT EXISTS (SELECT 1 FROM sla_targets t WHERE t.tenant = p_tenant
                          AND t.sla_policy_id = v_policy AND t.priority_id = pr.priority_id);

    -- Service types.
    INSERT INTO service_types (tenant, name, billing_method, order_number) VALUES
        (p_tenant, 'Managed Service', 'fixed', 1),
        (p_tenant, 'Labor - Remote', 'hourly', 2),
        (p_tenant, 'Labor - Onsite', 'hourly', 3),
        (p_tenant, 'Project Labor', 'hourly', 4),
        (p_tenant, 'Hardware', 'fixed', 5),
        (p_tenant, 'Software License', 'usage', 6),
        (p_tenant, 'Cloud Usage', 'usage', 7)
    ON CONFLICT (tenant, name) DO NOTHING;

    -- Tax regions (rates are entered by the MSP).
    INSERT INTO tax_regions (tenant, region_code, region_name) VALUES
        (p_tenant, 'US-AL', 'Alabama'),
        (p_tenant, 'US-AZ', 'Arizona'),
        (p_tenant, 'US-CA', 'California'),
        (p_tenant, 'US-CO', 'Colorado'),
        (p_tenant, 'US-FL', 'Florida'),
        (p_tenant, 'US-GA', 'Georgia'),
        (p_tenant, 'US-IL', 'Illinois'),
        (p_tenant, 'US-MA', 'Massachusetts'),
        (p_tenant, 'US-NY', 'New York'),
        (p_tenant, 'US-NC', 'North Carolina'),
        (p_tenant, 'US-OH', 'Ohio'),
        (p_tenant, 'US-PA', 'Pennsylvania'),
        (p_tenant, 'US-TX', 'Texas'),
        (p_tenant, 'US-WA', 'Washington'),
        (p_tenant, 'CA-ON', 'Ontario'),
        (p_tenant, 'CA-BC', 'British Columbia'),
        (p_tenant, 'GB', 'United Kingdom'),
        (p_tenant, 'DE', 'Germany'),
        (p_tenant, 'FR', 'France'),
        (p_tenant, 'NL', 'Netherlands'),
        (p_tenant, 'AU-NSW', 'New South Wales')
    ON CONFLICT (tenant, region_code) DO NOTHING;
END
$$;

COMMENT ON FUNCTION alga_seed_tenant(uuid) IS
    'Seeds permissions, roles, statuses, priorities, boards, categories, SLA targets,
     service types and tax regions of one tenant. Idempotent.';
