-- Client ID metadata documents are cached in oauth_clients (kind 'cimd')
-- until this time, then fetched again.
ALTER TABLE oauth_clients ADD COLUMN metadata_expires_at BIGINT;

-- `jti`s of private_key_jwt client assertions already used, until they expire.
CREATE TABLE client_assertion_jtis (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
