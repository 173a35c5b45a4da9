-- The provenance graph: objects as nodes, references as typed edges, curation as events.
CREATE TABLE IF NOT EXISTS nodes (
    oid             uuid PRIMARY KEY,
    type            text        NOT NULL,
    site            text        NOT NULL,
    creation_date   timestamptz NOT NULL,
    creator         text        NOT NULL,
    project         text        NOT NULL,
    privileges      smallint    NOT NULL,
    is_valid        smallint    NOT NULL,
    created_valid   smallint    NOT NULL,
    software_version text,
    timestamp_start timestamptz,
    timestamp_end   timestamptz,
    date_obs        timestamptz,
    chip            uuid,
    filter          uuid,
    filename        text,
    seq             bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_calibration ON nodes (type, chip, timestamp_start)
    WHERE timestamp_start IS NOT NULL;

-- src was made from dst: upstream follows src -> dst, downstream dst -> src.
CREATE TABLE IF NOT EXISTS edges (
    src  uuid    NOT NULL,
    name text    NOT NULL,
    pos  integer NOT NULL,
    dst  uuid    NOT NULL,
    PRIMARY KEY (src, name, pos)
);
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst);

CREATE TABLE IF NOT EXISTS curations (
    seq     bigint PRIMARY KEY,
    oid     uuid        NOT NULL,
    time    timestamptz NOT NULL,
    changes jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS curations_oid ON curations (oid, time);

-- the catalog changelog sequence applied so far: events are applied in order, once
CREATE TABLE IF NOT EXISTS cursor (
    name     text PRIMARY KEY,
    last_seq bigint NOT NULL
);
INSERT INTO cursor (name, last_seq) VALUES ('catalog', 0) ON CONFLICT DO NOTHING;
