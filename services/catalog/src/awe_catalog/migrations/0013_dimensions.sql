-- Typed data-ID columns (issue 17): the selective queries of a survey archive ("the
-- reduced frames of chip X in filter Y", "the products of this raw frame", "the frames of
-- a tile", "the frames of a night") are answered by a composite index on objects instead
-- of joins through object_refs and JSONB, whatever the size.
--
-- The reference columns are generated from the object's own refs (a single reference of
-- that name; a list, or none, leaves NULL), so they can never disagree with object_refs and
-- no writer sends them; the DSL compiler (storage/sql.py) reads `chip.name == X` as
-- `dim_chip = <the oid of the visible chip named X, looked up first>`. obs_time is the
-- observation time (date_obs) of the classes that declare it as a datetime; the catalogue
-- fills it on insert (storage/objects.py), a naive time being UTC as in queries. Adding the
-- generated columns rewrites the table once; every row keeps its values.
SET LOCAL TIME ZONE 'UTC';

-- obs_time is computed in the same rewrite, by a generated expression that is dropped right
-- after (DROP EXPRESSION keeps the values and rewrites nothing): an UPDATE afterwards would
-- write every row a second time and leave the table twice its size. Only a date_obs that
-- reads as a time fills it (a class whose date_obs is text might hold anything: that row
-- keeps NULL, and the compiler never uses the column for it). The function is IMMUTABLE for
-- this statement only: the time zone is fixed above, and the function is dropped below.
CREATE OR REPLACE FUNCTION awe_0013_obs_time(value text) RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value !~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d' THEN
        RETURN NULL;
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- one statement: the table is rewritten once, not once per column
ALTER TABLE objects
    ADD COLUMN IF NOT EXISTS dim_instrument uuid GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(refs -> 'instrument') = 'string'
             THEN (refs ->> 'instrument')::uuid END) STORED,
    ADD COLUMN IF NOT EXISTS dim_chip uuid GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(refs -> 'chip') = 'string'
             THEN (refs ->> 'chip')::uuid END) STORED,
    ADD COLUMN IF NOT EXISTS dim_filter uuid GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(refs -> 'filter') = 'string'
             THEN (refs ->> 'filter')::uuid END) STORED,
    ADD COLUMN IF NOT EXISTS dim_raw uuid GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(refs -> 'raw') = 'string'
             THEN (refs ->> 'raw')::uuid END) STORED,
    ADD COLUMN IF NOT EXISTS dim_tile text GENERATED ALWAYS AS (
        CASE WHEN jsonb_typeof(attributes -> 'tile') = 'string'
             THEN attributes ->> 'tile' END) STORED,
    ADD COLUMN IF NOT EXISTS obs_time timestamptz GENERATED ALWAYS AS (
        awe_0013_obs_time(attributes ->> 'date_obs')) STORED;
-- from now on the catalogue fills obs_time on insert (storage/objects.py)
ALTER TABLE objects ALTER COLUMN obs_time DROP EXPRESSION IF EXISTS;
DROP FUNCTION awe_0013_obs_time(text);

-- the new indexes are built with more sort memory than a query gets (this transaction only)
SET LOCAL maintenance_work_mem = '256MB';

-- class + chip (+ filter), in oid order: the compiler resolves the chip and filter named to
-- their oids first, so a page of "the frames of chip X in filter Y" is read off this index in
-- order (keyset: the page after a cursor too) and stops after the page, whatever the size.
CREATE INDEX IF NOT EXISTS objects_dim_chip ON objects (type, dim_chip, dim_filter, oid);
-- ... and on a night (an observation-time range): one index range; a night of every chip
-- uses it too (a skip scan over the few chips and filters)
CREATE INDEX IF NOT EXISTS objects_dim_night ON objects (type, dim_chip, dim_filter, obs_time)
    WHERE obs_time IS NOT NULL;
-- a tile's products (coadds, tile solutions, regridded frames), by filter
CREATE INDEX IF NOT EXISTS objects_dim_tile ON objects (type, dim_tile, dim_filter)
    WHERE dim_tile IS NOT NULL;
-- the products of one raw frame (its reduced frame, astrometry, source list)
CREATE INDEX IF NOT EXISTS objects_dim_raw ON objects (dim_raw, type) WHERE dim_raw IS NOT NULL;
-- Reverse look-ups through a general reference ("what references this object by name"):
-- the referencing oid in the index itself, so the look-up never visits the table.
CREATE INDEX IF NOT EXISTS object_refs_dst_src ON object_refs (dst, name) INCLUDE (src);
DROP INDEX IF EXISTS object_refs_dst;
