"""The simulator writes what a camera writes; ingest reads it back, or says why not."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from awecore.ingest import IngestError, read_exposure
from awecore.sim import PRESETS, NightPlan, simulate_night

PLAN = NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1, exposures_per_field=1,
                 stars_per_chip=20)
MINI_OMEGACAM = dataclasses.replace(PRESETS["omegacam"], chips_x=2, chips_y=1, nx=96, ny=160)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("night")
    return out, simulate_night(out, PRESETS["tiny"], seed=11, plan=PLAN)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_night(night: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    folder, _ = night
    simulate_night(tmp_path / "again", PRESETS["tiny"], seed=11, plan=PLAN)
    assert digest(tmp_path / "again") == digest(folder)
    simulate_night(tmp_path / "other", PRESETS["tiny"], seed=12, plan=PLAN)
    assert digest(tmp_path / "other") != digest(folder)


def test_night_contents_and_truth(night: tuple[Path, dict[str, object]]) -> None:
    folder, truth = night
    exposures = truth["exposures"]
    assert isinstance(exposures, list)
    kinds = [e["type"] for e in exposures]
    assert kinds.count("bias") == 3 and kinds.count("dome") == 4 and kinds.count("twilight") == 4
    assert kinds.count("science") == 2 and kinds.count("standard") == 2
    assert json.loads((folder / "truth.json").read_text())["seed"] == 11
    bias_file = next(e["file"] for e in exposures if e["type"] == "bias")
    with fits.open(folder / bias_file) as hdul:
        assert hdul[0].header["IMAGETYP"] == "BIAS" and hdul[0].header["EXPTIME"] == 0
        assert len(hdul) == 3
        chip = truth["chips"][hdul[1].header["CHIPID"]]  # type: ignore[index]
        data = hdul[1].data.astype(float)
        # the median of a bias is its level (plus half the structure's slope)
        assert abs(np.median(data) - chip["bias_level"] - chip["bias_slope"] / 2) < 1.0
        hot = np.array(chip["hot_pixels"])
        assert (data[hot[:, 0], hot[:, 1]] > chip["bias_level"] + 2000).all()
    sci = next(e for e in exposures if e["type"] == "science")
    with fits.open(folder / sci["file"]) as hdul:
        h = hdul[0].header
        assert h["IMAGETYP"] == "OBJECT" and h["FILTER"] == sci["filter"]
        assert hdul[1].header["CTYPE1"] == "RA---TAN" and "DATE-OBS" in h


def test_omegacam_headers_follow_eso(tmp_path: Path) -> None:
    simulate_night(tmp_path, MINI_OMEGACAM, seed=1,
                   plan=dataclasses.replace(PLAN, n_dome=1, n_twilight=1))
    files = sorted(tmp_path.glob("OMEGACAM.*.fits"))
    with fits.open(files[0]) as hdul:
        assert hdul[0].header["HIERARCH ESO DPR TYPE"] == "BIAS"
        assert [h.header["EXTNAME"] for h in hdul[1:]] == ["ESO_CCD_#65", "ESO_CCD_#66"]
    flat = next(f for f in files
                if fits.getheader(f)["HIERARCH ESO DPR TYPE"] == "FLAT,DOME")
    exposure = read_exposure(flat, flat.name)
    assert {p.cls for p in exposure.parts} == {"RawDomeFlatFrame"}
    assert [p.chip for p in exposure.parts] == ["ESO_CCD_#65", "ESO_CCD_#66"]
    assert exposure.parts[0].filter == "r_SDSS"
    assert exposure.parts[0].attributes["gain"] > 1
    assert "#" not in exposure.parts[0].name  # storage names stay plain


def test_read_exposure_splits_per_chip(night: tuple[Path, dict[str, object]]) -> None:
    folder, truth = night
    std = next(e for e in truth["exposures"] if e["type"] == "standard")  # type: ignore[union-attr]
    exposure = read_exposure(folder / std["file"], std["file"])
    assert [p.cls for p in exposure.parts] == ["RawStandardFrame"] * 2
    part = exposure.parts[0]
    assert part.name == f"raw/AWECAM/2003-02-14/{std['file'].removesuffix('.fits')}/ccd50.fits"
    assert part.attributes["exptime"] == 30.0 and part.attributes["airmass"] > 1
    with fits.open(__import__("io").BytesIO(part.data)) as hdul:
        assert hdul[0].header["CHIPID"] == "ccd50" and hdul[0].header["AWEEXT"] == 1
        assert hdul[0].data.shape == (256, 128)


def test_malformed_files_say_why(night: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    folder, truth = night
    good = folder / truth["exposures"][0]["file"]  # type: ignore[index]
    (tmp_path / "notes.fits").write_text("this is not FITS")
    with pytest.raises(IngestError, match="not a readable FITS"):
        read_exposure(tmp_path / "notes.fits", "notes.fits")
    raw = good.read_bytes()
    with pytest.raises(IngestError, match="truncated"):
        read_exposure(raw[: len(raw) // 2], "cut.fits")
    with fits.open(good) as hdul:
        del hdul[0].header["DATE-OBS"]
        hdul.writeto(tmp_path / "nodate.fits")
        hdul[0].header["DATE-OBS"] = "2003-02-14T17:00:00"
        hdul[0].header["INSTRUME"] = "HUBBLE"
        hdul.writeto(tmp_path / "alien.fits")
        hdul[0].header["INSTRUME"] = "AWECAM"
        hdul[0].header["IMAGETYP"] = "DARKISH"
        hdul.writeto(tmp_path / "oddtype.fits")
    with pytest.raises(IngestError, match="missing DATE-OBS"):
        read_exposure(tmp_path / "nodate.fits", "nodate.fits")
    with pytest.raises(IngestError, match="unknown instrument HUBBLE"):
        read_exposure(tmp_path / "alien.fits", "alien.fits")
    with pytest.raises(IngestError, match="unknown observation type 'DARKISH'"):
        read_exposure(tmp_path / "oddtype.fits", "oddtype.fits")


def test_reference_catalogue_is_written_and_read(night: tuple[Path, dict[str, object]],
                                                 tmp_path: Path) -> None:
    folder, truth = night
    exposure = read_exposure(folder / "refcat.fits", "refcat.fits")
    (part,) = exposure.parts
    assert part.cls == "ReferenceCatalog" and part.chip is None
    assert part.name == "raw/refcat/AWE-SIM-REF-11/refcat.fits"
    fields = truth["fields"]
    assert isinstance(fields, dict)
    assert part.attributes["n_stars"] == sum(len(f["stars"]) for f in fields.values())
    assert part.attributes["filters"] == "841,842"
    with fits.open(folder / "refcat.fits") as hdul:
        stars = hdul["STARS"].data
        true_dec = np.concatenate([[s["dec"] for s in f["stars"]] for f in fields.values()])
        # positions carry the catalogue's own small errors, not the truth exactly
        error = np.abs(stars["DEC"] - true_dec) * 3600
        assert 0 < np.median(error) < 0.05
    # the headers' pointing is off by the recorded error; the truth has the exact one
    sci = next(e for e in truth["exposures"] if e["type"] == "science")  # type: ignore[union-attr]
    assert max(abs(v) for v in sci["pointing_error_arcsec"]) > 0
    with fits.open(folder / "refcat.fits") as hdul:
        del hdul["STARS"]
        hdul.writeto(tmp_path / "nostars.fits")
    with pytest.raises(IngestError, match="needs a STARS table"):
        read_exposure(tmp_path / "nostars.fits", "nostars.fits")
    with fits.open(folder / "refcat.fits") as hdul:
        hdul["STARS"] = fits.ImageHDU(np.zeros((3, 3)), name="STARS")
        hdul.writeto(tmp_path / "imagestars.fits")
        hdul[0].header["REFCAT"] = "my catalogue/../x"
        hdul.writeto(tmp_path / "badname.fits")
    with pytest.raises(IngestError, match="needs a STARS table"):
        read_exposure(tmp_path / "imagestars.fits", "imagestars.fits")
    with pytest.raises(IngestError, match="cannot name a catalogue"):
        read_exposure(tmp_path / "badname.fits", "badname.fits")
    with fits.open(folder / "refcat.fits") as hdul:
        hdul["STARS"].data["RA"][:2] = [359.99, 0.01]  # a field across RA 0h
        hdul["STARS"].data["RA"][2:] = 0.0
        hdul.writeto(tmp_path / "wraps.fits")
    with pytest.raises(IngestError, match="crosses RA 0h"):
        read_exposure(tmp_path / "wraps.fits", "wraps.fits")
