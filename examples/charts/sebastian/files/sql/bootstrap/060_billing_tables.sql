-- 060_billing_tables.sql: Billing: services, tax, contracts, invoices, payments, usage
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- service_types: Kinds of billable services.
CREATE TABLE IF NOT EXISTS service_types (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    billing_method text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    order_number integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_types_pkey PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS service_types_name_uq ON service_types (tenant, name);
DROP TRIGGER IF EXISTS service_types_set_updated_at ON service_types;
CREATE TRIGGER service_types_set_updated_at BEFORE UPDATE ON service_types
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE service_types IS 'Kinds of billable services.';

-- tax_regions: Tax jurisdictions.
CREATE TABLE IF NOT EXISTS tax_regions (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    region_code text NOT NULL,
    region_name text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tax_regions_pkey PRIMARY KEY (tenant, region_code)
);
DROP TRIGGER IF EXISTS tax_regions_set_updated_at ON tax_regions;
CREATE TRIGGER tax_regions_set_updated_at BEFORE UPDATE ON tax_regions
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE tax_regions IS 'Tax jurisdictions.';

-- tax_rates: Tax rates per region and period.
CREATE TABLE IF NOT EXISTS tax_rates (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    tax_rate_id uuid NOT NULL DEFAULT gen_random_uuid(),
    region_code text NOT NULL,
    tax_percentage numeric(6,3) NOT NULL,
    description text,
    start_date date NOT NULL,
    end_date date,
    is_composite boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tax_rates_pkey PRIMARY KEY (tenant, tax_rate_id)
);
DROP TRIGGER IF EXISTS tax_rates_set_updated_at ON tax_rates;
CREATE TRIGGER tax_rates_set_updated_at BEFORE UPDATE ON tax_rates
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE tax_rates IS 'Tax rates per region and period.';

-- service_catalog: Services and products that can be billed.
CREATE TABLE IF NOT EXISTS service_catalog (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    service_id uuid NOT NULL DEFAULT gen_random_uuid(),
    service_name text NOT NULL,
    custom_service_type_id uuid NOT NULL,
    billing_method text NOT NULL,
    default_rate bigint NOT NULL DEFAULT 0,
    unit_of_measure text NOT NULL DEFAULT 'hour',
    sku text,
    tax_rate_id uuid,
    description text,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_catalog_pkey PRIMARY KEY (tenant, service_id),
    CONSTRAINT service_catalog_custom_service_type_id_fkey FOREIGN KEY (tenant, custom_service_type_id)
        REFERENCES service_types (tenant, id),
    CONSTRAINT service_catalog_tax_rate_id_fkey FOREIGN KEY (tenant, tax_rate_id)
        REFERENCES tax_rates (tenant, tax_rate_id)
);
CREATE INDEX IF NOT EXISTS service_catalog_custom_service_type_id_idx ON service_catalog (tenant, custom_service_type_id);
CREATE INDEX IF NOT EXISTS service_catalog_tax_rate_id_idx ON service_catalog (tenant, tax_rate_id);
DROP TRIGGER IF EXISTS service_catalog_set_updated_at ON service_catalog;
CREATE TRIGGER service_catalog_set_updated_at BEFORE UPDATE ON service_catalog
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE service_catalog IS 'Services and products that can be billed.';

-- contracts: Agreements with clients that group contract lines.
CREATE TABLE IF NOT EXISTS contracts (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    contract_id uuid NOT NULL DEFAULT gen_random_uuid(),
    contract_name text NOT NULL,
    company_id uuid NOT NULL,
    billing_frequency text NOT NULL DEFAULT 'monthly',
    start_date date NOT NULL,
    end_date date,
    is_active boolean NOT NULL DEFAULT true,
    po_number text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_pkey PRIMARY KEY (tenant, contract_id),
    CONSTRAINT contracts_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id)
);
CREATE INDEX IF NOT EXISTS contracts_company_id_idx ON contracts (tenant, company_id);
DROP TRIGGER IF EXISTS contracts_set_updated_at ON contracts;
CREATE TRIGGER contracts_set_updated_at BEFORE UPDATE ON contracts
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE contracts IS 'Agreements with clients that group contract lines.';

-- contract_lines: Fixed fee, hourly, usage or bucket lines of a contract.
CREATE TABLE IF NOT EXISTS contract_lines (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    contract_line_id uuid NOT NULL DEFAULT gen_random_uuid(),
    contract_id uuid NOT NULL,
    line_name text NOT NULL,
    line_type text NOT NULL,
    service_id uuid,
    rate bigint,
    quantity numeric(12,4),
    overage_rate bigint,
    enable_proration boolean NOT NULL DEFAULT false,
    billing_timing text NOT NULL DEFAULT 'arrears',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contract_lines_pkey PRIMARY KEY (tenant, contract_line_id),
    CONSTRAINT contract_lines_contract_id_fkey FOREIGN KEY (tenant, contract_id)
        REFERENCES contracts (tenant, contract_id),
    CONSTRAINT contract_lines_service_id_fkey FOREIGN KEY (tenant, service_id)
        REFERENCES service_catalog (tenant, service_id)
);
CREATE INDEX IF NOT EXISTS contract_lines_contract_id_idx ON contract_lines (tenant, contract_id);
CREATE INDEX IF NOT EXISTS contract_lines_service_id_idx ON contract_lines (tenant, service_id);
DROP TRIGGER IF EXISTS contract_lines_set_updated_at ON contract_lines;
CREATE TRIGGER contract_lines_set_updated_at BEFORE UPDATE ON contract_lines
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE contract_lines IS 'Fixed fee, hourly, usage or bucket lines of a contract.';

-- invoices: Invoices issued to clients.
CREATE TABLE IF NOT EXISTS invoices (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    invoice_id uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_number text NOT NULL,
    company_id uuid NOT NULL,
    invoice_date date NOT NULL,
    due_date date NOT NULL,
    billing_period_start date,
    billing_period_end date,
    subtotal bigint NOT NULL DEFAULT 0,
    tax bigint NOT NULL DEFAULT 0,
    total_amount bigint NOT NULL DEFAULT 0,
    credit_applied bigint NOT NULL DEFAULT 0,
    currency_code char(3) NOT NULL DEFAULT 'USD',
    status text NOT NULL DEFAULT 'draft',
    finalized_at timestamptz,
    template_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoices_pkey PRIMARY KEY (tenant, invoice_id),
    CONSTRAINT invoices_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id)
);
CREATE INDEX IF NOT EXISTS invoices_company_id_idx ON invoices (tenant, company_id);
CREATE UNIQUE INDEX IF NOT EXISTS invoices_number_uq ON invoices (tenant, invoice_number);
CREATE INDEX IF NOT EXISTS invoices_company_date_idx ON invoices (tenant, company_id, invoice_date DESC);
DROP TRIGGER IF EXISTS invoices_set_updated_at ON invoices;
CREATE TRIGGER invoices_set_updated_at BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE invoices IS 'Invoices issued to clients.';

-- invoice_items: Lines of an invoice.
CREATE TABLE IF NOT EXISTS invoice_items (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    item_id uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL,
    service_id uuid,
    contract_line_id uuid,
    description text NOT NULL,
    quantity numeric(12,4) NOT NULL DEFAULT 1,
    unit_price bigint NOT NULL DEFAULT 0,
    net_amount bigint NOT NULL DEFAULT 0,
    tax_amount bigint NOT NULL DEFAULT 0,
    tax_region text,
    is_manual boolean NOT NULL DEFAULT false,
    is_discount boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invoice_items_pkey PRIMARY KEY (tenant, item_id),
    CONSTRAINT invoice_items_invoice_id_fkey FOREIGN KEY (tenant, invoice_id)
        REFERENCES invoices (tenant, invoice_id),
    CONSTRAINT invoice_items_service_id_fkey FOREIGN KEY (tenant, service_id)
        REFERENCES service_catalog (tenant, service_id),
    CONSTRAINT invoice_items_contract_line_id_fkey FOREIGN KEY (tenant, contract_line_id)
        REFERENCES contract_lines (tenant, contract_line_id)
);
CREATE INDEX IF NOT EXISTS invoice_items_invoice_id_idx ON invoice_items (tenant, invoice_id);
CREATE INDEX IF NOT EXISTS invoice_items_service_id_idx ON invoice_items (tenant, service_id);
CREATE INDEX IF NOT EXISTS invoice_items_contract_line_id_idx ON invoice_items (tenant, contract_line_id);
DROP TRIGGER IF EXISTS invoice_items_set_updated_at ON invoice_items;
CREATE TRIGGER invoice_items_set_updated_at BEFORE UPDATE ON invoice_items
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE invoice_items IS 'Lines of an invoice.';

-- payments: Payments received against invoices.
CREATE TABLE IF NOT EXISTS payments (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    payment_id uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL,
    amount bigint NOT NULL,
    payment_method text NOT NULL,
    payment_date date NOT NULL,
    reference_number text,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_pkey PRIMARY KEY (tenant, payment_id),
    CONSTRAINT payments_invoice_id_fkey FOREIGN KEY (tenant, invoice_id)
        REFERENCES invoices (tenant, invoice_id)
);
CREATE INDEX IF NOT EXISTS payments_invoice_id_idx ON payments (tenant, invoice_id);
DROP TRIGGER IF EXISTS payments_set_updated_at ON payments;
CREATE TRIGGER payments_set_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE payments IS 'Payments received against invoices.';

-- usage_tracking: Metered usage records for usage-based lines.
CREATE TABLE IF NOT EXISTS usage_tracking (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    usage_id uuid NOT NULL DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL,
    service_id uuid NOT NULL,
    usage_date timestamptz NOT NULL,
    quantity numeric(14,4) NOT NULL,
    invoiced boolean NOT NULL DEFAULT false,
    source text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_tracking_pkey PRIMARY KEY (tenant, usage_id),
    CONSTRAINT usage_tracking_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id),
    CONSTRAINT usage_tracking_service_id_fkey FOREIGN KEY (tenant, service_id)
        REFERENCES service_catalog (tenant, service_id)
);
CREATE INDEX IF NOT EXISTS usage_tracking_company_id_idx ON usage_tracking (tenant, company_id);
CREATE INDEX IF NOT EXISTS usage_tracking_service_id_idx ON usage_tracking (tenant, service_id);
CREATE INDEX IF NOT EXISTS usage_tracking_rollup_idx ON usage_tracking (tenant, service_id, usage_date) WHERE NOT invoiced;
DROP TRIGGER IF EXISTS usage_tracking_set_updated_at ON usage_tracking;
CREATE TRIGGER usage_tracking_set_updated_at BEFORE UPDATE ON usage_tracking
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE usage_tracking IS 'Metered usage records for usage-based lines.';
