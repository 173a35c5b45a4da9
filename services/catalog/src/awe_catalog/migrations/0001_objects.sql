-- Objects, their references (the lineage) and the changelog that doubles as the outbox.
CREATE TABLE IF NOT EXISTS objects (
    oid              uuid PRIMARY KEY,
    type             text        NOT NULL,
    site             text        NOT NULL,
    creation_date    timestamptz NOT NULL,
    creator          text        NOT NULL,
    project          text        NOT NULL,
    privileges       smallint    NOT NULL CHECK (privileges BETWEEN 1 AND 5),
    is_valid         smallint    NOT NULL DEFAULT 1 CHECK (is_valid BETWEEN 0 AND 2),
    quality_flags    bigint      NOT NULL DEFAULT 0,
    timestamp_start  timestamptz,
    timestamp_end    timestamptz,
    filename         text,
    file_size        bigint,
    checksum         text,
    process_params   jsonb,
    software_version text,
    comments         text,
    attributes       jsonb       NOT NULL DEFAULT '{}',
    refs             jsonb       NOT NULL DEFAULT '{}',
    hlc              bigint      NOT NULL,
    curation_hlc     bigint      NOT NULL,
    curation_site    text        NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_type_created ON objects (type, creation_date);
CREATE INDEX IF NOT EXISTS objects_creator ON objects (creator);
CREATE INDEX IF NOT EXISTS objects_project ON objects (project);
CREATE INDEX IF NOT EXISTS objects_validity ON objects (type, timestamp_start, timestamp_end)
    WHERE timestamp_start IS NOT NULL;
-- Instruments, chips and filters are looked up by name on every validity query.
CREATE INDEX IF NOT EXISTS objects_name ON objects (type, (attributes ->> 'name'));
CREATE UNIQUE INDEX IF NOT EXISTS objects_filename ON objects (filename)
    WHERE filename IS NOT NULL;

CREATE TABLE IF NOT EXISTS object_refs (
    src  uuid    NOT NULL REFERENCES objects (oid),
    name text    NOT NULL,
    pos  integer NOT NULL,
    dst  uuid    NOT NULL,
    PRIMARY KEY (src, name, pos)
);
CREATE INDEX IF NOT EXISTS object_refs_dst ON object_refs (dst, name);

-- seq is gapless: assigned under a lock that is held until commit (see ObjectStore), so a
-- consumer that sees N+2 after N knows it missed N+1.
CREATE TABLE IF NOT EXISTS changes (
    seq      bigint PRIMARY KEY,
    event_id uuid        NOT NULL UNIQUE,
    oid      uuid        NOT NULL,
    kind     text        NOT NULL CHECK (kind IN ('created', 'curated')),
    time     timestamptz NOT NULL,
    payload  jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_oid ON changes (oid);

-- The outbox relay's cursor: the highest sequence the broker acknowledged.
CREATE TABLE IF NOT EXISTS outbox_cursor (
    name     text PRIMARY KEY,
    last_seq bigint NOT NULL
);
