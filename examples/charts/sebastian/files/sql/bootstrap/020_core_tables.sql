-- 020_core_tables.sql: Core tables: tenants, users, roles, permissions
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- tenants: One row per MSP (tenant). Every other table is scoped by tenant.
CREATE TABLE IF NOT EXISTS tenants (
    tenant uuid NOT NULL DEFAULT gen_random_uuid(),
    company_name text NOT NULL,
    email text,
    phone_number text,
    industry text,
    plan text NOT NULL DEFAULT 'appliance',
    default_currency char(3) NOT NULL DEFAULT 'USD',
    default_locale text NOT NULL DEFAULT 'en-US',
    time_zone text NOT NULL DEFAULT 'UTC',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant)
);
DROP TRIGGER IF EXISTS tenants_set_updated_at ON tenants;
CREATE TRIGGER tenants_set_updated_at BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE tenants IS 'One row per MSP (tenant). Every other table is scoped by tenant.';

-- users: Internal users (technicians, dispatchers, admins) and client portal users.
CREATE TABLE IF NOT EXISTS users (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    username citext NOT NULL,
    email citext NOT NULL,
    first_name text,
    last_name text,
    hashed_password text,
    user_type text NOT NULL DEFAULT 'internal',
    contact_id uuid,
    is_inactive boolean NOT NULL DEFAULT false,
    two_factor_enabled boolean NOT NULL DEFAULT false,
    two_factor_secret text,
    last_login_at timestamptz,
    failed_login_count integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (tenant, user_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_uq ON users (tenant, email);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_uq ON users (tenant, username);
DROP TRIGGER IF EXISTS users_set_updated_at ON users;
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE users IS 'Internal users (technicians, dispatchers, admins) and client portal users.';

-- roles: Named sets of permissions.
CREATE TABLE IF NOT EXISTS roles (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    role_id uuid NOT NULL DEFAULT gen_random_uuid(),
    role_name text NOT NULL,
    description text,
    msp boolean NOT NULL DEFAULT true,
    client boolean NOT NULL DEFAULT false,
    is_system boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT roles_pkey PRIMARY KEY (tenant, role_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS roles_name_uq ON roles (tenant, role_name);
DROP TRIGGER IF EXISTS roles_set_updated_at ON roles;
CREATE TRIGGER roles_set_updated_at BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE roles IS 'Named sets of permissions.';

-- permissions: Resource/action pairs that roles grant.
CREATE TABLE IF NOT EXISTS permissions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    permission_id uuid NOT NULL DEFAULT gen_random_uuid(),
    resource text NOT NULL,
    action text NOT NULL,
    msp boolean NOT NULL DEFAULT true,
    client boolean NOT NULL DEFAULT false,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT permissions_pkey PRIMARY KEY (tenant, permission_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS permissions_resource_action_uq ON permissions (tenant, resource, action);
DROP TRIGGER IF EXISTS permissions_set_updated_at ON permissions;
CREATE TRIGGER permissions_set_updated_at BEFORE UPDATE ON permissions
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE permissions IS 'Resource/action pairs that roles grant.';

-- role_permissions: Permissions granted by a role.
CREATE TABLE IF NOT EXISTS role_permissions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    role_id uuid NOT NULL,
    permission_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_permissions_pkey PRIMARY KEY (tenant, role_id, permission_id),
    CONSTRAINT role_permissions_role_id_fkey FOREIGN KEY (tenant, role_id)
        REFERENCES roles (tenant, role_id),
    CONSTRAINT role_permissions_permission_id_fkey FOREIGN KEY (tenant, permission_id)
        REFERENCES permissions (tenant, permission_id)
);
CREATE INDEX IF NOT EXISTS role_permissions_role_id_idx ON role_permissions (tenant, role_id);
CREATE INDEX IF NOT EXISTS role_permissions_permission_id_idx ON role_permissions (tenant, permission_id);
COMMENT ON TABLE role_permissions IS 'Permissions granted by a role.';

-- user_roles: Roles held by a user.
CREATE TABLE IF NOT EXISTS user_roles (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    role_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_roles_pkey PRIMARY KEY (tenant, user_id, role_id),
    CONSTRAINT user_roles_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id),
    CONSTRAINT user_roles_role_id_fkey FOREIGN KEY (tenant, role_id)
        REFERENCES roles (tenant, role_id)
);
CREATE INDEX IF NOT EXISTS user_roles_user_id_idx ON user_roles (tenant, user_id);
CREATE INDEX IF NOT EXISTS user_roles_role_id_idx ON user_roles (tenant, role_id);
COMMENT ON TABLE user_roles IS 'Roles held by a user.';

-- teams: Groups of technicians with a manager.
CREATE TABLE IF NOT EXISTS teams (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    team_id uuid NOT NULL DEFAULT gen_random_uuid(),
    team_name text NOT NULL,
    manager_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT teams_pkey PRIMARY KEY (tenant, team_id),
    CONSTRAINT teams_manager_id_fkey FOREIGN KEY (tenant, manager_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS teams_manager_id_idx ON teams (tenant, manager_id);
DROP TRIGGER IF EXISTS teams_set_updated_at ON teams;
CREATE TRIGGER teams_set_updated_at BEFORE UPDATE ON teams
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE teams IS 'Groups of technicians with a manager.';

-- api_keys: API keys of users; only a salted hash is stored.
CREATE TABLE IF NOT EXISTS api_keys (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    api_key_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL,
    key_hash text NOT NULL,
    key_prefix text NOT NULL,
    description text,
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_pkey PRIMARY KEY (tenant, api_key_id),
    CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS api_keys_user_id_idx ON api_keys (tenant, user_id);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_hash_uq ON api_keys (key_hash);
DROP TRIGGER IF EXISTS api_keys_set_updated_at ON api_keys;
CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE api_keys IS 'API keys of users; only a salted hash is stored.';
