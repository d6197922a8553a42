-- Case work: files attached to a case (by the resident, or by staff with their answer), the
-- staff member a case is assigned to within its department, and reply templates.

-- Files are stored here unless configured otherwise, so a backup carries them. `bytes` is the
-- file as kept (images without their metadata); `thumbnail` a small JPEG for images.
CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases(id),
    name TEXT NOT NULL,
    content_type TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    thumbnail BYTEA,
    -- `vecino` (the resident, from the form or tracking) or `staff` (with the answer).
    source TEXT NOT NULL CHECK (source IN ('vecino', 'staff')),
    uploaded_by TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_case ON attachments (case_id);

-- The staff member (username) working on the case, within its department; re-routing clears it.
ALTER TABLE cases ADD COLUMN assignee TEXT;
CREATE INDEX cases_assignee ON cases (assignee);

-- Answer templates: for one department, or for all when `department_id` is NULL.
CREATE TABLE reply_templates (
    id BIGSERIAL PRIMARY KEY,
    department_id TEXT REFERENCES departments(id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
