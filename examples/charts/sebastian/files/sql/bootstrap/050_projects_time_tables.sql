-- 050_projects_time_tables.sql: Projects, time sheets and scheduling
--
-- Part of the Alga PSA bootstrap applied by the sebastian setup job
-- (bootstrap.mode=fresh). Every statement is idempotent: the job may run again
-- after a failed attempt, and upgrades re-apply the whole directory.
--
-- Files run in name order inside one transaction per file.

-- projects: Client projects.
CREATE TABLE IF NOT EXISTS projects (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    project_id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_number text NOT NULL,
    project_name text NOT NULL,
    company_id uuid NOT NULL,
    contact_name_id uuid,
    assigned_to uuid,
    status uuid NOT NULL,
    description text,
    start_date date,
    end_date date,
    budgeted_hours numeric(10,2),
    is_inactive boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_pkey PRIMARY KEY (tenant, project_id),
    CONSTRAINT projects_company_id_fkey FOREIGN KEY (tenant, company_id)
        REFERENCES companies (tenant, company_id),
    CONSTRAINT projects_contact_name_id_fkey FOREIGN KEY (tenant, contact_name_id)
        REFERENCES contacts (tenant, contact_name_id),
    CONSTRAINT projects_assigned_to_fkey FOREIGN KEY (tenant, assigned_to)
        REFERENCES users (tenant, user_id),
    CONSTRAINT projects_status_fkey FOREIGN KEY (tenant, status)
        REFERENCES statuses (tenant, status_id)
);
CREATE INDEX IF NOT EXISTS projects_company_id_idx ON projects (tenant, company_id);
CREATE INDEX IF NOT EXISTS projects_contact_name_id_idx ON projects (tenant, contact_name_id);
CREATE INDEX IF NOT EXISTS projects_assigned_to_idx ON projects (tenant, assigned_to);
CREATE INDEX IF NOT EXISTS projects_status_idx ON projects (tenant, status);
CREATE UNIQUE INDEX IF NOT EXISTS projects_number_uq ON projects (tenant, project_number);
DROP TRIGGER IF EXISTS projects_set_updated_at ON projects;
CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE projects IS 'Client projects.';

-- project_phases: Phases of a project.
CREATE TABLE IF NOT EXISTS project_phases (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    phase_id uuid NOT NULL DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL,
    phase_name text NOT NULL,
    description text,
    start_date date,
    end_date date,
    order_key text NOT NULL,
    wbs_code text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_phases_pkey PRIMARY KEY (tenant, phase_id),
    CONSTRAINT project_phases_project_id_fkey FOREIGN KEY (tenant, project_id)
        REFERENCES projects (tenant, project_id)
);
CREATE INDEX IF NOT EXISTS project_phases_project_id_idx ON project_phases (tenant, project_id);
DROP TRIGGER IF EXISTS project_phases_set_updated_at ON project_phases;
CREATE TRIGGER project_phases_set_updated_at BEFORE UPDATE ON project_phases
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE project_phases IS 'Phases of a project.';

-- project_tasks: Tasks inside a project phase.
CREATE TABLE IF NOT EXISTS project_tasks (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    task_id uuid NOT NULL DEFAULT gen_random_uuid(),
    phase_id uuid NOT NULL,
    task_name text NOT NULL,
    description text,
    assigned_to uuid,
    estimated_hours numeric(10,2),
    actual_hours numeric(10,2),
    status_id uuid NOT NULL,
    due_date date,
    order_key text NOT NULL,
    wbs_code text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_tasks_pkey PRIMARY KEY (tenant, task_id),
    CONSTRAINT project_tasks_phase_id_fkey FOREIGN KEY (tenant, phase_id)
        REFERENCES project_phases (tenant, phase_id),
    CONSTRAINT project_tasks_assigned_to_fkey FOREIGN KEY (tenant, assigned_to)
        REFERENCES users (tenant, user_id),
    CONSTRAINT project_tasks_status_id_fkey FOREIGN KEY (tenant, status_id)
        REFERENCES statuses (tenant, status_id)
);
CREATE INDEX IF NOT EXISTS project_tasks_phase_id_idx ON project_tasks (tenant, phase_id);
CREATE INDEX IF NOT EXISTS project_tasks_assigned_to_idx ON project_tasks (tenant, assigned_to);
CREATE INDEX IF NOT EXISTS project_tasks_status_id_idx ON project_tasks (tenant, status_id);
DROP TRIGGER IF EXISTS project_tasks_set_updated_at ON project_tasks;
CREATE TRIGGER project_tasks_set_updated_at BEFORE UPDATE ON project_tasks
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE project_tasks IS 'Tasks inside a project phase.';

-- task_dependencies: Finish-to-start and other links between tasks.
CREATE TABLE IF NOT EXISTS task_dependencies (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    dependency_id uuid NOT NULL DEFAULT gen_random_uuid(),
    predecessor_task_id uuid NOT NULL,
    successor_task_id uuid NOT NULL,
    dependency_type text NOT NULL DEFAULT 'finish_to_start',
    lag_days integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_dependencies_pkey PRIMARY KEY (tenant, dependency_id),
    CONSTRAINT task_dependencies_predecessor_task_id_fkey FOREIGN KEY (tenant, predecessor_task_id)
        REFERENCES project_tasks (tenant, task_id),
    CONSTRAINT task_dependencies_successor_task_id_fkey FOREIGN KEY (tenant, successor_task_id)
        REFERENCES project_tasks (tenant, task_id)
);
CREATE INDEX IF NOT EXISTS task_dependencies_predecessor_task_id_idx ON task_dependencies (tenant, predecessor_task_id);
CREATE INDEX IF NOT EXISTS task_dependencies_successor_task_id_idx ON task_dependencies (tenant, successor_task_id);
COMMENT ON TABLE task_dependencies IS 'Finish-to-start and other links between tasks.';

-- time_periods: Time sheet periods.
CREATE TABLE IF NOT EXISTS time_periods (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    period_id uuid NOT NULL DEFAULT gen_random_uuid(),
    start_date date NOT NULL,
    end_date date NOT NULL,
    is_closed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_periods_pkey PRIMARY KEY (tenant, period_id)
);
DROP TRIGGER IF EXISTS time_periods_set_updated_at ON time_periods;
CREATE TRIGGER time_periods_set_updated_at BEFORE UPDATE ON time_periods
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE time_periods IS 'Time sheet periods.';

-- time_sheets: A user's time sheet for one period.
CREATE TABLE IF NOT EXISTS time_sheets (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    period_id uuid NOT NULL,
    user_id uuid NOT NULL,
    approval_status text NOT NULL DEFAULT 'DRAFT',
    submitted_at timestamptz,
    approved_at timestamptz,
    approved_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_sheets_pkey PRIMARY KEY (tenant, id),
    CONSTRAINT time_sheets_period_id_fkey FOREIGN KEY (tenant, period_id)
        REFERENCES time_periods (tenant, period_id),
    CONSTRAINT time_sheets_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id),
    CONSTRAINT time_sheets_approved_by_fkey FOREIGN KEY (tenant, approved_by)
        REFERENCES users (tenant, user_id)
);
CREATE INDEX IF NOT EXISTS time_sheets_period_id_idx ON time_sheets (tenant, period_id);
CREATE INDEX IF NOT EXISTS time_sheets_user_id_idx ON time_sheets (tenant, user_id);
CREATE INDEX IF NOT EXISTS time_sheets_approved_by_idx ON time_sheets (tenant, approved_by);
DROP TRIGGER IF EXISTS time_sheets_set_updated_at ON time_sheets;
CREATE TRIGGER time_sheets_set_updated_at BEFORE UPDATE ON time_sheets
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE time_sheets IS 'A user's time sheet for one period.';

-- time_entries: Time worked on tickets, tasks and ad-hoc work.
CREATE TABLE IF NOT EXISTS time_entries (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    entry_id uuid NOT NULL DEFAULT gen_random_uuid(),
    work_item_id uuid,
    work_item_type text,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    billable_duration integer NOT NULL DEFAULT 0,
    notes text,
    user_id uuid NOT NULL,
    time_sheet_id uuid,
    service_id uuid,
    invoiced boolean NOT NULL DEFAULT false,
    approval_status text NOT NULL DEFAULT 'DRAFT',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT time_entries_pkey PRIMARY KEY (tenant, entry_id),
    CONSTRAINT time_entries_user_id_fkey FOREIGN KEY (tenant, user_id)
        REFERENCES users (tenant, user_id),
    CONSTRAINT time_entries_time_sheet_id_fkey FOREIGN KEY (tenant, time_sheet_id)
        REFERENCES time_sheets (tenant, id)
);
CREATE INDEX IF NOT EXISTS time_entries_user_id_idx ON time_entries (tenant, user_id);
CREATE INDEX IF NOT EXISTS time_entries_time_sheet_id_idx ON time_entries (tenant, time_sheet_id);
CREATE INDEX IF NOT EXISTS time_entries_user_start_idx ON time_entries (tenant, user_id, start_time);
CREATE INDEX IF NOT EXISTS time_entries_work_item_idx ON time_entries (tenant, work_item_type, work_item_id);
DROP TRIGGER IF EXISTS time_entries_set_updated_at ON time_entries;
CREATE TRIGGER time_entries_set_updated_at BEFORE UPDATE ON time_entries
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE time_entries IS 'Time worked on tickets, tasks and ad-hoc work.';

-- schedule_entries: Dispatch board appointments.
CREATE TABLE IF NOT EXISTS schedule_entries (
    tenant uuid NOT NULL REFERENCES tenants (tenant) ON DELETE CASCADE,
    entry_id uuid NOT NULL DEFAULT gen_random_uuid(),
    title text NOT NULL,
    scheduled_start timestamptz NOT NULL,
    scheduled_end timestamptz NOT NULL,
    work_item_id uuid,
    work_item_type text,
    status text NOT NULL DEFAULT 'scheduled',
    recurrence text,
    is_private boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedule_entries_pkey PRIMARY KEY (tenant, entry_id)
);
DROP TRIGGER IF EXISTS schedule_entries_set_updated_at ON schedule_entries;
CREATE TRIGGER schedule_entries_set_updated_at BEFORE UPDATE ON schedule_entries
    FOR EACH ROW EXECUTE FUNCTION alga_set_updated_at();
COMMENT ON TABLE schedule_entries IS 'Dispatch board appointments.';
