-- The allowlist. Admins edit these tables with plain SQL too (see README):
-- every column they need to omit has a default, and the checks refuse what
-- the broker could not use (upper-case emails, unknown roles or statuses).

CREATE TABLE allowed_users (
    user_id TEXT PRIMARY KEY NOT NULL DEFAULT gen_random_uuid()::text,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(btrim(email)) AND email LIKE '%_@_%'),
    name TEXT,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    provider TEXT,
    provider_subject TEXT,
    created_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint),
    updated_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint),
    last_login_at BIGINT
);

-- An UPDATE typed by an admin still moves updated_at, which is what replicas
-- watch to pick up suspensions quickly.
CREATE FUNCTION allowed_users_touch() RETURNS trigger AS $$
BEGIN
    IF NEW.updated_at = OLD.updated_at THEN
        NEW.updated_at := extract(epoch FROM now())::bigint;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER allowed_users_touch BEFORE UPDATE ON allowed_users
FOR EACH ROW EXECUTE FUNCTION allowed_users_touch();

CREATE TABLE allowed_domains (
    domain TEXT PRIMARY KEY NOT NULL CHECK (domain = lower(btrim(domain)) AND domain LIKE '%_._%'),
    created_at BIGINT NOT NULL DEFAULT (extract(epoch FROM now())::bigint)
);
