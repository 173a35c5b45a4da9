-- Who a token is may be remembered by each catalog process (services/tokens.py); these
-- triggers announce at commit whatever changes it, so that every process forgets at once:
-- a token revoked (or removed), a user changed or removed, a membership added or removed.
-- A token's use (last_used) and a new token announce nothing.
CREATE OR REPLACE FUNCTION awe_auth_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('awe_auth', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS tokens_revoked ON tokens;
CREATE TRIGGER tokens_revoked AFTER UPDATE OF revoked, user_name, token_hash ON tokens
    FOR EACH ROW WHEN (OLD.revoked IS DISTINCT FROM NEW.revoked
                       OR OLD.user_name IS DISTINCT FROM NEW.user_name
                       OR OLD.token_hash IS DISTINCT FROM NEW.token_hash)
    EXECUTE FUNCTION awe_auth_changed();

DROP TRIGGER IF EXISTS tokens_removed ON tokens;
CREATE TRIGGER tokens_removed AFTER DELETE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION awe_auth_changed();

DROP TRIGGER IF EXISTS users_changed ON users;
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION awe_auth_changed();

DROP TRIGGER IF EXISTS memberships_changed ON memberships;
CREATE TRIGGER memberships_changed AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION awe_auth_changed();
