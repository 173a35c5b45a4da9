-- Every curation of an object, as its history keeps it: who changed which fields from what
-- to what, when, at which site, and why. A curation is named by its object, its origin site
-- and the origin's time of it (one object's curations at one site are serialised by its row
-- lock), so the row a peer records for a replicated curation is the origin's row, whichever
-- way it arrives (the curation event, or the history an object brings when it becomes
-- shared), and recording it twice is a no-op.
CREATE TABLE IF NOT EXISTS curation_history (
    oid     uuid        NOT NULL REFERENCES objects (oid),
    at      timestamptz NOT NULL,
    site    text        NOT NULL,
    by_user text        NOT NULL,
    reason  text,
    -- {field: {"old": value, "new": value}}, values as JSON (datetimes ISO 8601)
    changes jsonb       NOT NULL,
    PRIMARY KEY (oid, at, site)
);
