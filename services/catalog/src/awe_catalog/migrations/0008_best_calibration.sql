-- The best calibration for a class, chip and moment (POST /calibrations/best): one range
-- scan per look-up. Valid calibrations only (the look-up wants no other); the chip is the
-- reference as the object stores it; both ends of the window are in the key, so windows
-- that end before the moment are passed over in the index, not fetched from the table.
CREATE INDEX IF NOT EXISTS objects_best_calibration
    ON objects (type, (refs ->> 'chip'), timestamp_start, timestamp_end)
    WHERE is_valid = 1 AND timestamp_start IS NOT NULL;
