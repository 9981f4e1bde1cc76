-- What every replica's revocation view (src/revocation/) polls: each source
-- has a timestamp column, indexed, so a poll reads only recent changes.

CREATE INDEX allowed_users_updated_at ON allowed_users (updated_at);
CREATE INDEX revoked_jtis_revoked_at ON revoked_jtis (revoked_at);

-- A person's grant to one client, withdrawn (Store::revoke_grant_of): access
-- tokens the client got for the person at or before revoked_at are refused.
CREATE TABLE revoked_grants (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX revoked_grants_revoked_at ON revoked_grants (revoked_at);

-- A DELETE leaves no row to poll, so removing someone from the allowlist
-- (with the CLI or with plain SQL) leaves this tombstone. Kept a day.
CREATE TABLE removed_users (
    user_id TEXT NOT NULL,
    removed_at BIGINT NOT NULL
);
CREATE INDEX removed_users_removed_at ON removed_users (removed_at);

-- clock_timestamp(), not now(): now() is when the transaction began, and a
-- stamp closer to the commit is less likely to fall behind a poll's cursor.
CREATE FUNCTION allowed_users_removed() RETURNS trigger AS $$
BEGIN
    INSERT INTO removed_users (user_id, removed_at)
    VALUES (OLD.user_id, extract(epoch FROM clock_timestamp())::bigint);
    RETURN OLD;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER allowed_users_removed AFTER DELETE ON allowed_users
FOR EACH ROW EXECUTE FUNCTION allowed_users_removed();
