-- Support access and a second factor for staff (issue 18).
--
-- The role `support` joins the allowed roles, and staff get an optional e-mail address (where
-- support summaries reach administrators). SQLite cannot change a CHECK constraint in place:
-- the users table is rebuilt. Dropping it deletes its staff sessions (ON DELETE CASCADE), so
-- everyone logs in again after this upgrade; nothing else references users.
CREATE TABLE users_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'department', 'analyst', 'support')),
    department_id TEXT REFERENCES departments(id),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    email TEXT,
    CONSTRAINT users_department_role CHECK (role <> 'department' OR department_id IS NOT NULL)
);
-- `SELECT *` on purpose: should an earlier migration add a column to users, this fails
-- loudly instead of silently dropping it.
INSERT INTO users_new SELECT *, NULL FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE UNIQUE INDEX users_username_key ON users (username);

-- A session opened by a password alone for a user who must enrol a second factor can only
-- enrol (purpose 'enrol'); a console login waiting for its code is 'code' and opens nothing;
-- every other session is 'full'.
ALTER TABLE staff_sessions ADD COLUMN purpose TEXT NOT NULL DEFAULT 'full';

-- TOTP (RFC 6238) second factor: the shared secret must be readable to check codes. It is
-- pending until the user confirms a first code.
CREATE TABLE staff_totp (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    confirmed_at BIGINT,
    -- The step of the last code accepted: a code works once.
    last_step BIGINT,
    created_at BIGINT NOT NULL
);
-- Recovery codes: SHA-256 of high-entropy codes shown once; each works once.
CREATE TABLE staff_recovery_codes (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Support grants: an administrator authorises a support user for a reason, a time and a
-- scope. `ended_at` is set once (revoked, or found expired) together with the summary.
CREATE TABLE support_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    username TEXT NOT NULL,
    reason TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('config', 'cases')),
    granted_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    ended_at BIGINT,
    summary TEXT
);
CREATE INDEX support_grants_user ON support_grants (user_id, expires_at);
CREATE INDEX support_grants_open ON support_grants (ended_at, expires_at);

-- Every request made under a grant is audited with the grant's id.
ALTER TABLE audit_log ADD COLUMN grant_id BIGINT;
CREATE INDEX audit_log_grant ON audit_log (grant_id);
