-- The moment a job's calibrations must cover (the plan node's time: its raw frame's, or the
-- middle of its night). The worker checks it again before making: a calibration scientist may
-- have shortened or invalidated a calibration between the plan and the make.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS moment timestamptz;
