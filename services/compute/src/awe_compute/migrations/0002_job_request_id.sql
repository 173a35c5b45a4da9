-- The X-Request-ID of the request that submitted a job: its worker binds it while it makes
-- the job, so the calls it makes and the lines it writes to the job's log carry it.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS request_id text;
