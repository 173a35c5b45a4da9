-- Sources of source lists: catalogue data (tens of TB at survey scale), loaded by COPY and
-- indexed on the sky by HEALPix (nested, nside 2^14, ~13 arcsec pixels): portable to any
-- PostgreSQL, no spherical extension needed.
CREATE TABLE IF NOT EXISTS sources (
    sourcelist uuid    NOT NULL REFERENCES objects (oid),
    seq        integer NOT NULL,
    ra         double precision NOT NULL,
    dec        double precision NOT NULL,
    healpix    bigint  NOT NULL,
    x          real,
    y          real,
    flux       double precision,
    flux_err   double precision,
    mag        real,
    mag_err    real,
    snr        real,
    flag       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (sourcelist, seq)
);
CREATE INDEX IF NOT EXISTS sources_healpix ON sources (healpix);
CREATE INDEX IF NOT EXISTS sources_mag ON sources (mag);
