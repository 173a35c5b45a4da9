-- A reference row's source object, checked once per statement instead of once per row
-- (issue 17). The foreign key object_refs.src -> objects.oid ran a trigger for every row
-- (a query and a row lock on the object each): COPYing the references of a batch of 5 000
-- frames cost three times COPYing the frames. The same guarantees, set-based:
--   * every row written to object_refs names an existing object as its source (one
--     anti-join over the rows the statement wrote);
--   * an object that references name cannot be deleted, and no object's oid ever changes.
-- The catalogue writes references only together with their objects (storage/objects.py),
-- in the same transaction, and deletes no object; these checks keep that so for any other
-- writer. The error is the foreign key's (SQLSTATE 23503).
ALTER TABLE object_refs DROP CONSTRAINT IF EXISTS object_refs_src_fkey;

CREATE OR REPLACE FUNCTION awe_refs_have_sources() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    missing uuid;
BEGIN
    SELECT n.src INTO missing FROM awe_written_refs n
        WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.oid = n.src) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'object_refs: no object % for a reference to come from', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS object_refs_sources_inserted ON object_refs;
CREATE TRIGGER object_refs_sources_inserted AFTER INSERT ON object_refs
    REFERENCING NEW TABLE AS awe_written_refs
    FOR EACH STATEMENT EXECUTE FUNCTION awe_refs_have_sources();
DROP TRIGGER IF EXISTS object_refs_sources_updated ON object_refs;
CREATE TRIGGER object_refs_sources_updated AFTER UPDATE ON object_refs
    REFERENCING NEW TABLE AS awe_written_refs
    FOR EACH STATEMENT EXECUTE FUNCTION awe_refs_have_sources();

CREATE OR REPLACE FUNCTION awe_objects_referenced_stay() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    taken uuid;
BEGIN
    SELECT r.src INTO taken FROM awe_deleted_objects d JOIN object_refs r ON r.src = d.oid
        LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'objects: % has references; it cannot be deleted', taken
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS objects_referenced_stay ON objects;
CREATE TRIGGER objects_referenced_stay AFTER DELETE ON objects
    REFERENCING OLD TABLE AS awe_deleted_objects
    FOR EACH STATEMENT EXECUTE FUNCTION awe_objects_referenced_stay();

CREATE OR REPLACE FUNCTION awe_oid_never_changes() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'objects: an oid never changes (% -> %)', OLD.oid, NEW.oid
        USING ERRCODE = 'foreign_key_violation';
END $$;

DROP TRIGGER IF EXISTS objects_oid_fixed ON objects;
CREATE TRIGGER objects_oid_fixed BEFORE UPDATE OF oid ON objects
    FOR EACH ROW WHEN (OLD.oid IS DISTINCT FROM NEW.oid)
    EXECUTE FUNCTION awe_oid_never_changes();
