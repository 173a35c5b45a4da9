-- One job per product to make. Its product oid is chosen when it is planned, so a job done
-- twice (a redelivered message, a worker killed after registering) registers one object.
CREATE TABLE IF NOT EXISTS jobs (
    id           uuid PRIMARY KEY,
    key          text        NOT NULL,
    cls          text        NOT NULL,
    chip         text        NOT NULL,
    filter       text,
    night        date        NOT NULL,
    raw          text,
    params       jsonb       NOT NULL DEFAULT '{}',
    reasons      jsonb       NOT NULL DEFAULT '[]',
    inputs       jsonb       NOT NULL DEFAULT '{}',
    raws         jsonb       NOT NULL DEFAULT '{}',
    product      uuid        NOT NULL,
    deps         uuid[]      NOT NULL DEFAULT '{}',
    status       text        NOT NULL CHECK (status IN
                   ('waiting', 'ready', 'running', 'done', 'failed', 'cancelled')),
    worker       text,
    attempts     integer     NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    error        text,
    log          text        NOT NULL DEFAULT '',
    submitted_by text        NOT NULL,
    created      timestamptz NOT NULL DEFAULT now(),
    started      timestamptz,
    finished     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_key ON jobs (key)
    WHERE status IN ('waiting', 'ready', 'running');
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created);
CREATE INDEX IF NOT EXISTS jobs_deps ON jobs USING gin (deps);
