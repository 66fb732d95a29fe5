-- 120_reindex_and_analyze.sql: maintenance after a restore
--
-- Rebuilds invalid indexes and refreshes planner statistics. Runs outside a
-- transaction (the setup script applies this file with --single-transaction off).

DO $$
DECLARE
    v_index regclass;
BEGIN
    FOR v_index IN SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid LOOP
        RAISE NOTICE 'reindexing invalid index %', v_index;
        EXECUTE format('REINDEX INDEX %s', v_index);
    END LOOP;
END
$$;

-- Validate foreign keys restored as NOT VALID.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT conrelid::regclass AS tbl, conname
               FROM pg_constraint WHERE contype = 'f' AND NOT convalidated LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', r.tbl, r.conname);
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE WARNING 'constraint % on % has orphaned rows; left NOT VALID', r.conname, r.tbl;
        END;
    END LOOP;
END
$$;

-- Rebuild search vectors that may be stale after a restore of a partial dump.
UPDATE tickets
   SET search_vector = to_tsvector('simple', coalesce(ticket_number, '') || ' ' || coalesce(title, ''))
 WHERE search_vector IS NULL;

ANALYZE;
