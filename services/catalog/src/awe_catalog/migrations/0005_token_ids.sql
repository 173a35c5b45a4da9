-- Tokens get a public id (to list and revoke them by; never the secret, never its hash),
-- when they were last used (updated at most once a minute) and when they were revoked.
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS last_used timestamptz;
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS revoked_at timestamptz;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_id ON tokens (id);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (user_name, created);
