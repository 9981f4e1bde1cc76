-- A browser signed in to the broker after an upstream login, so a second
-- client authorization within the session lifetime skips the provider.
CREATE TABLE browser_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,      -- SHA-256 of the cookie's secret
    user_id TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);
