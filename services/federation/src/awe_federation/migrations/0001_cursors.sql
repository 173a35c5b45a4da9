-- Per peer: the last of its changelog sequences applied here, and changes that wait for the
-- objects they reference.
CREATE TABLE IF NOT EXISTS peer_cursor (
    peer       text PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0,
    last_time  timestamptz,
    updated    timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE TABLE IF NOT EXISTS pending (
    peer  text   NOT NULL,
    id    text   NOT NULL,
    seq   bigint NOT NULL,
    event jsonb  NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (peer, id)
);
