-- 110_repair_numbering.sql: brings per-tenant numbering ahead of restored data
--
-- A restore from a logical backup can leave alga_meta.next_number behind the
-- tickets, projects and invoices that were written after the backup of that
-- table. This moves every counter to the highest number in use.

UPDATE alga_meta.next_number nn
   SET last_number = greatest(nn.last_number, sub.max_number)
  FROM (
        SELECT tenant, 'TICKET' AS entity_type,
               max(nullif(regexp_replace(ticket_number, '\D', '', 'g'), '')::bigint) AS max_number
          FROM tickets GROUP BY tenant
        UNION ALL
        SELECT tenant, 'PROJECT',
               max(nullif(regexp_replace(project_number, '\D', '', 'g'), '')::bigint)
          FROM projects GROUP BY tenant
        UNION ALL
        SELECT tenant, 'INVOICE',
               max(nullif(regexp_replace(invoice_number, '\D', '', 'g'), '')::bigint)
          FROM invoices GROUP BY tenant
       ) AS sub
 WHERE nn.tenant = sub.tenant
   AND nn.entity_type = sub.entity_type
   AND sub.max_number IS NOT NULL;

-- Tenants restored without reference data get it now.
DO $$
DECLARE
    v_tenant uuid;
BEGIN
    FOR v_tenant IN SELECT tenant FROM tenants LOOP
        PERFORM alga_seed_tenant(v_tenant);
    END LOOP;
END
$$;

INSERT INTO alga_meta.bootstrap_log (file_name, checksum, mode)
VALUES ('110_repair_numbering.sql', md5(now()::text), 'recover')
ON CONFLICT DO NOTHING;
