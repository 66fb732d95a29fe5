-- 130_orphans_report.sql: rows that point at missing parents
--
-- Reported only; the appliance support bundle collects this output.

SELECT 'comments without ticket' AS finding, count(*) AS rows
  FROM comments c
 WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.tenant = c.tenant AND t.ticket_id = c.ticket_id)
UNION ALL
SELECT 'time entries without user', count(*)
  FROM time_entries te
 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant = te.tenant AND u.user_id = te.user_id)
UNION ALL
SELECT 'invoice items without invoice', count(*)
  FROM invoice_items ii
 WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.tenant = ii.tenant AND i.invoice_id = ii.invoice_id)
UNION ALL
SELECT 'document associations without document', count(*)
  FROM document_associations da
 WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.tenant = da.tenant AND d.document_id = da.document_id)
UNION ALL
SELECT 'tag mappings without tag', count(*)
  FROM tag_mappings tm
 WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.tenant = tm.tenant AND t.tag_id = tm.tag_id)
UNION ALL
SELECT 'project tasks without phase', count(*)
  FROM project_tasks pt
 WHERE NOT EXISTS (SELECT 1 FROM project_phases pp WHERE pp.tenant = pt.tenant AND pp.phase_id = pt.phase_id)
UNION ALL
SELECT 'workflow executions without registration', count(*)
  FROM workflow_executions we
 WHERE NOT EXISTS (SELECT 1 FROM workflow_registrations wr
                    WHERE wr.tenant = we.tenant AND wr.registration_id = we.registration_id)
ORDER BY 1;
