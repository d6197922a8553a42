-- Sign-in with identity providers (OpenID Connect): staff through the municipality's
-- provider, residents through ClaveÚnica.

-- One row per sign-in under way: the state (hashed: it travels in addresses), the nonce and
-- the PKCE verifier stay here, never in the browser. The callback deletes the row as it reads
-- it, so a state works once; rows past `expires_at` are refused and purged.
CREATE TABLE oidc_flows (
    state_hash TEXT PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('staff', 'resident')),
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A resident signed in with ClaveÚnica: short sessions, the token stored hashed. The ID token
-- is kept only to end the session at the provider too (its end-session endpoint).
CREATE TABLE resident_sessions (
    token_hash TEXT PRIMARY KEY,
    rut TEXT NOT NULL,
    name TEXT NOT NULL,
    id_token TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX resident_sessions_expires_at ON resident_sessions (expires_at);

-- Staff sessions opened by single sign-on (the provider did the authentication, including
-- any second factor).
ALTER TABLE staff_sessions ADD COLUMN sso BOOLEAN NOT NULL DEFAULT FALSE;

-- Cases filed by a resident signed in with ClaveÚnica: the RUT is the State's, not typed.
ALTER TABLE cases ADD COLUMN identity_verified BOOLEAN NOT NULL DEFAULT FALSE;
