-- Users, projects and API tokens (only a token's SHA-256 is stored).
CREATE TABLE IF NOT EXISTS projects (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    created     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS users (
    name            text PRIMARY KEY,
    is_admin        boolean NOT NULL DEFAULT false,
    is_service      boolean NOT NULL DEFAULT false,
    default_project text NOT NULL REFERENCES projects (name),
    created         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS memberships (
    user_name    text NOT NULL REFERENCES users (name),
    project_name text NOT NULL REFERENCES projects (name),
    PRIMARY KEY (user_name, project_name)
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash text PRIMARY KEY,
    user_name  text NOT NULL REFERENCES users (name),
    label      text NOT NULL DEFAULT '',
    created    timestamptz NOT NULL DEFAULT now(),
    revoked    boolean NOT NULL DEFAULT false
);
