-- Jobs belong to who submitted them (submitted_by). A later submission that needs the same
-- product is handed the job being made already: its submitter is added here, so that they
-- may follow the job too (awecore.visibility.may_see_job); only the submitter or an admin
-- cancels or retries it.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS shared_with text[] NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS jobs_submitted_by ON jobs (submitted_by, created);
CREATE INDEX IF NOT EXISTS jobs_shared_with ON jobs USING gin (shared_with);
