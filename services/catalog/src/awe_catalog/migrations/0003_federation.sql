-- Per-field clocks of the curation fields: [hlc, site] of the change that set each one, so
-- concurrent curation at two sites converges field by field (last writer wins).
ALTER TABLE objects ADD COLUMN IF NOT EXISTS curation_clock jsonb NOT NULL DEFAULT '{}';
