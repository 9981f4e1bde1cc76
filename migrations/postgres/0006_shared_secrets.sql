-- Secrets every replica must use alike, made by whichever replica needs one
-- first (e.g. the key that binds gateway sessions to people).
CREATE TABLE shared_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
