-- Tokens get a scope ('all': what their user may do; 'read': reading only, refused with
-- 403 on any write by every service) and an optional expiry (refused with 401 after it).
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS scope text NOT NULL DEFAULT 'all';
ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires timestamptz;
ALTER TABLE tokens DROP CONSTRAINT IF EXISTS tokens_scope;
ALTER TABLE tokens ADD CONSTRAINT tokens_scope CHECK (scope IN ('all', 'read'));
-- Only a token's SHA-256 is stored (0002). A row written by hand with the secret itself
-- (an operator's INSERT) is hashed here: a SHA-256 is 64 lower-case hex digits, which no
-- AWE token is ("awe_" + base64url), so this changes a row once and never again.
UPDATE tokens SET token_hash = encode(sha256(convert_to(token_hash, 'UTF8')), 'hex')
    WHERE token_hash !~ '^[0-9a-f]{64}$';
-- The scope and the expiry change who a token is: the processes that remember it
-- (services/tokens.py) hear of it as of a revocation.
DROP TRIGGER IF EXISTS tokens_revoked ON tokens;
CREATE TRIGGER tokens_revoked AFTER UPDATE OF revoked, user_name, token_hash, scope, expires
    ON tokens
    FOR EACH ROW WHEN (OLD.revoked IS DISTINCT FROM NEW.revoked
                       OR OLD.user_name IS DISTINCT FROM NEW.user_name
                       OR OLD.token_hash IS DISTINCT FROM NEW.token_hash
                       OR OLD.scope IS DISTINCT FROM NEW.scope
                       OR OLD.expires IS DISTINCT FROM NEW.expires)
    EXECUTE FUNCTION awe_auth_changed();
