-- OAuth clients: registered dynamically (RFC 7591), by URL (CIMD) or statically.
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    client_secret_hash TEXT,
    client_name TEXT,
    redirect_uris TEXT NOT NULL,            -- JSON array
    grant_types TEXT NOT NULL,              -- JSON array
    response_types TEXT NOT NULL,           -- JSON array
    token_endpoint_auth_method TEXT NOT NULL,
    scope TEXT,
    metadata TEXT NOT NULL,                 -- the registration response, as JSON
    kind TEXT NOT NULL DEFAULT 'dynamic' CHECK (kind IN ('dynamic', 'cimd', 'static')),
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    disabled BIGINT NOT NULL DEFAULT 0
);

-- Pending /authorize transactions, so any replica can finish them.
CREATE TABLE auth_requests (
    id TEXT PRIMARY KEY NOT NULL,           -- also the upstream `state`
    browser_hash TEXT NOT NULL,             -- SHA-256 of the browser cookie's secret
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    state TEXT,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    upstream_nonce TEXT NOT NULL,
    upstream_verifier TEXT NOT NULL,
    user_id TEXT,                           -- set once the upstream login succeeded
    csrf_hash TEXT,                         -- set with user_id, for the consent form
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Authorization codes: hashed, single use, short-lived.
CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    -- what the redemption issued, so a replay can revoke it
    refresh_family_id TEXT,
    access_jti TEXT,
    access_expires_at BIGINT
);

-- Refresh tokens: hashed; a family shares one login and rotates together.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    parent_hash TEXT,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Which person approved which client, for which scopes.
CREATE TABLE consents (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Access tokens revoked before they expire.
CREATE TABLE revoked_jtis (
    jti TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- Token signing keys; the newest unretired key signs, all unretired verify.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    email TEXT,
    client_id TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    ip TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
