-- Best calibrations are governed (issue 15). The calibration a site's users get as "best"
-- is one the site's pipeline made (its creator an admin or a service account), one that
-- came from a peer site (which governed it), or one a calibration scientist approved
-- (set is_valid = 1 as an admin or as the holder of the 'calibration' role in its
-- project); a user's own calibrations are best only for that user. `governed` records the
-- first three; the look-up (storage/calibrations.py) adds "or it is the viewer's own".
ALTER TABLE objects ADD COLUMN IF NOT EXISTS governed boolean NOT NULL DEFAULT false;
UPDATE objects o SET governed = true FROM users u
    WHERE NOT o.governed AND u.name = o.creator AND (u.is_admin OR u.is_service);
-- Per-project roles: a member, or a calibration scientist who curates the project's
-- products (is_valid, validity windows, comments) and whose approval governs them.
ALTER TABLE memberships ADD COLUMN IF NOT EXISTS role text NOT NULL DEFAULT 'member';
ALTER TABLE memberships DROP CONSTRAINT IF EXISTS memberships_role;
ALTER TABLE memberships ADD CONSTRAINT memberships_role CHECK (role IN ('member', 'calibration'));
-- (A role given or taken is announced to the identity caches by 0009's memberships trigger.)
