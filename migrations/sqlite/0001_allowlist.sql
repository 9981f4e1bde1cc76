-- The allowlist. Admins edit these tables with plain SQL too (see README):
-- every column they need to omit has a default, and the checks refuse what
-- the broker could not use (upper-case emails, unknown roles or statuses).

CREATE TABLE allowed_users (
    user_id TEXT PRIMARY KEY NOT NULL DEFAULT (
        lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
        substr(lower(hex(randomblob(2))), 2) || '-' ||
        substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
        lower(hex(randomblob(6)))
    ),
    email TEXT NOT NULL UNIQUE CHECK (email = lower(trim(email)) AND email LIKE '%_@_%'),
    name TEXT,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    provider TEXT,
    provider_subject TEXT,
    created_at BIGINT NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    updated_at BIGINT NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER)),
    last_login_at BIGINT
);

-- An UPDATE typed by an admin still moves updated_at, which is what replicas
-- watch to pick up suspensions quickly.
CREATE TRIGGER allowed_users_touch AFTER UPDATE ON allowed_users
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE allowed_users SET updated_at = CAST(strftime('%s', 'now') AS INTEGER)
    WHERE user_id = NEW.user_id;
END;

CREATE TABLE allowed_domains (
    domain TEXT PRIMARY KEY NOT NULL CHECK (domain = lower(trim(domain)) AND domain LIKE '%_._%'),
    created_at BIGINT NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
