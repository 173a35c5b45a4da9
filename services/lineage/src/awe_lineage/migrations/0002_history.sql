-- The values a node was made with, beside is_valid's (created_valid): with the curations they
-- answer "as it was at time T" (?at=) for the validity window and the privileges too.
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS created_privileges smallint;
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS created_timestamp_start timestamptz;
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS created_timestamp_end timestamptz;

-- a node whose field was never curated still has the value it was made with; for the others
-- that value was not kept before this migration, and a past view shows it as unknown (null)
UPDATE nodes n SET created_privileges = n.privileges WHERE NOT EXISTS (
    SELECT 1 FROM curations c WHERE c.oid = n.oid AND c.changes ? 'privileges');
UPDATE nodes n SET created_timestamp_start = n.timestamp_start WHERE NOT EXISTS (
    SELECT 1 FROM curations c WHERE c.oid = n.oid AND c.changes ? 'timestamp_start');
UPDATE nodes n SET created_timestamp_end = n.timestamp_end WHERE NOT EXISTS (
    SELECT 1 FROM curations c WHERE c.oid = n.oid AND c.changes ? 'timestamp_end');
