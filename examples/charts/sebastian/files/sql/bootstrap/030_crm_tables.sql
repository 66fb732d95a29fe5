-- 030_crm_tables.sql: CRM tables: companies, locations, contacts, tags, interactions
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- companies: Client companies of the MSP.
CREATE TABLE IF NOT EXISTS companies (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    company_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_name text NOT NULL,
    client_type text NOT NULL DEFAULT 'company',
    url text,
    phone_no text,
    billing_cycle text NOT NULL DEFAULT 'monthly',
    account_manager_id uuid,
    is_inactive boolean NOT NULL DEFAULT false,
    is_tax_exempt boolean NOT NULL DEFAULT false,
    tax_id_number text,
    credit_balance numeric(14,2) NOT NULL DEFAULT 0,
    portal_slug text,
    properties jsonb NOT NULL DEFAULT '{}'::jsonb,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT companies_pkey PRIMARY KEY (tenant, company_id),
    CONSTRAINT companies_account_manager_id_fkey FOREIGN KEY (tenant, account_manager_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS companies_account_manager_id_idx ON companies (tenant, account_manager_id);
CREATE INDEX IF NOT EXISTS companies_name_idx ON companies (tenant, lower(company_name));
CREATE UNIQUE INDEX IF NOT EXISTS companies_portal_slug_uq ON companies (tenant, portal_slug) WHERE portal_slug IS NOT NULL;
DROP TRIGGER IF EXISTS companies_set_updated_at ON companies;
CREATE TRIGGER companies_set_updated_at BEFORE UPDATE ON companies
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE companies IS 'Client companies of the MSP.';

-- company_locations: Postal addresses of a company.
CREATE TABLE IF NOT EXISTS company_locations (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    location_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    location_name text,
    address_line1 text NOT NULL,
    address_line2 text,
    city text NOT NULL,
    state_province text,
    postal_code text,
    country_code char(2) NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    is_billing_address boolean NOT NULL DEFAULT false,
    is_shipping_address boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT company_locations_pkey PRIMARY KEY (tenant, location_id),
    CONSTRAINT company_locations_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id)
);
CREATE INDEX IF NOT EXISTS company_locations_company_id_idx ON company_locations (tenant, company_id);
DROP TRIGGER IF EXISTS company_locations_set_updated_at ON company_locations;
CREATE TRIGGER company_locations_set_updated_at BEFORE UPDATE ON company_locations
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE company_locations IS 'Postal addresses of a company.';

-- contacts: People at client companies.
CREATE TABLE IF NOT EXISTS contacts (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    contact_name_id uuid NOT NULL DEFAULT gen_random_uuid(),
    full_name text NOT NULL,
    company_id uuid,
    email citext,
    phone_number text,
    "role" text,
    is_inactive boolean NOT NULL DEFAULT false,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_pkey PRIMARY KEY (tenant, contact_name_id),
    CONSTRAINT contacts_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id)
);
CREATE INDEX IF NOT EXISTS contacts_company_id_idx ON contacts (tenant, company_id);
CREATE INDEX IF NOT EXISTS contacts_email_idx ON contacts (tenant, email);
DROP TRIGGER IF EXISTS contacts_set_updated_at ON contacts;
CREATE TRIGGER contacts_set_updated_at BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE contacts IS 'People at client companies.';

-- tags: Tag definitions with colours.
CREATE TABLE IF NOT EXISTS tags (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    tag_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tag_text text NOT NULL,
    tagged_type text NOT NULL,
    background_color text,
    text_color text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_pkey PRIMARY KEY (tenant, tag_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS tags_text_type_uq ON tags (tenant, tagged_type, tag_text);
DROP TRIGGER IF EXISTS tags_set_updated_at ON tags;
CREATE TRIGGER tags_set_updated_at BEFORE UPDATE ON tags
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE tags IS 'Tag definitions with colours.';

-- tag_mappings: Tags attached to entities.
CREATE TABLE IF NOT EXISTS tag_mappings (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    mapping_id uuid NOT NULL DEFAULT gen_random_uuid(),
    tag_id uuid NOT NULL,
    tagged_id uuid NOT NULL,
    tagged_type text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tag_mappings_pkey PRIMARY KEY (tenant, mapping_id),
    CONSTRAINT tag_mappings_tag_id_fkey FOREIGN KEY (tenant, tag_id)
        REFERENCES tags (tenant, tag_id),
    CONSTRAINT tag_mappings_created_by_fkey FOREIGN KEY (tenant, created_by)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS tag_mappings_tag_id_idx ON tag_mappings (tenant, tag_id);
CREATE INDEX IF NOT EXISTS tag_mappings_created_by_idx ON tag_mappings (tenant, created_by);
CREATE INDEX IF NOT EXISTS tag_mappings_entity_idx ON tag_mappings (tenant, tagged_type, tagged_id);
COMMENT ON TABLE tag_mappings IS 'Tags attached to entities.';

-- interactions: Calls, meetings and notes logged against companies and contacts.
CREATE TABLE IF NOT EXISTS interactions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    interaction_id uuid NOT NULL DEFAULT gen_random_uuid(),
    type_id uuid NOT NULL,
    contact_name_id uuid,
    company_id uuid,
    user_id uuid NOT NULL,
    title text NOT NULL,
    notes text,
    interaction_date timestamptz NOT NULL,
    duration_minutes integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT interactions_pkey PRIMARY KEY (tenant, interaction_id),
    CONSTRAINT interactions_contact_name_id_fkey FOREIGN KEY (tenant, contact_name_id)
        REFERENCES contacts (tenant, contact_name_id),
    CONSTRAINT interactions_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id),
    CONSTRAINT interactions_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS interactions_contact_name_id_idx ON interactions (tenant, contact_name_id);
CREATE INDEX IF NOT EXISTS interactions_company_id_idx ON interactions (tenant, company_id);
CREATE INDEX IF NOT EXISTS interactions_user_id_idx ON interactions (tenant, user_id);
DROP TRIGGER IF EXISTS interactions_set_updated_at ON interactions;
CREATE TRIGGER interactions_set_updated_at BEFORE UPDATE ON interactions
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE interactions IS 'Calls, meetings and notes logged against companies and contacts.';
