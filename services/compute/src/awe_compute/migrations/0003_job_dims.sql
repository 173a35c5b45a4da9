-- Products across chips and nights (a coadd over a sky tile) have no chip or night: their
-- data ID's other dimensions (the tile) are kept in dims, which the worker's node takes.
ALTER TABLE jobs ALTER COLUMN chip DROP NOT NULL;
ALTER TABLE jobs ALTER COLUMN night DROP NOT NULL;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS dims jsonb NOT NULL DEFAULT '{}';
