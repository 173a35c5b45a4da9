-- Classes registered through the API (POST /classes): users' own product classes, whose
-- Python code the catalog does not have. One row per version, never changed nor removed:
-- objects made under an older version keep a schema they validate against (a new version
-- may only add fields). The catalog makes every class from its latest version at start-up
-- and when another catalog process registers one (NOTIFY awe_classes).
CREATE TABLE IF NOT EXISTS object_classes (
    name           text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    schema         jsonb       NOT NULL,
    registered_by  text        NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
