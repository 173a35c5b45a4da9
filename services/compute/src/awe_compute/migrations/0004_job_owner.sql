-- Products are made on the submitter's behalf (issue 15): each job records who its product
-- will belong to (project, privileges) and the credential the submitter delegated for it
-- (a catalogue token of scope 'make', encrypted with the compute service's key; never
-- shown by the API). Jobs from before this keep the old behaviour: made by the service
-- account at level 3, no credential.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS project text;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS privileges integer NOT NULL DEFAULT 3;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS credential text;
