"""The simulator writes what a camera writes; ingest reads it back, or says why not."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from awecore.ingest import (
    AweTranslator,
    IncompleteExposure,
    IngestError,
    OmegaCamTranslator,
    WideCamTranslator,
    check_complete,
    read_exposure,
)
from awecore.pipelines import format_section, overscan_correct, parse_section
from awecore.sim import PRESETS, NightPlan, simulate_night, true_wcs

PLAN = NightPlan(n_bias=3, n_dome=2, n_twilight=2, science_fields=1, exposures_per_field=1,
                 stars_per_chip=20)
MINI_OMEGACAM = dataclasses.replace(PRESETS["omegacam-small"], chips_x=2, chips_y=1, nx=96,
                                    ny=160)


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
        assert hdul[0].header["HIERARCH ESO DET CHIPS"] == 2
        assert [h.header["EXTNAME"] for h in hdul[1:]] == ["ESO_CCD_#65", "ESO_CCD_#66"]
    flat = next(f for f in files
                if fits.getheader(f)["HIERARCH ESO DPR TYPE"] == "FLAT,DOME")
    exposure = read_exposure(flat, flat.name)
    assert {p.cls for p in exposure.parts} == {"RawDomeFlatFrame"}
    assert [p.chip for p in exposure.parts] == ["ESO_CCD_#65", "ESO_CCD_#66"]
    assert exposure.parts[0].filter == "r_SDSS"
    assert exposure.parts[0].attributes["gain"] > 1
    # '#' is allowed in storage names: the chip keeps its name
    assert exposure.parts[0].name == (f"raw/OMEGACAM/2003-02-14/{flat.name[:-5]}/"
                                      "ESO_CCD_#65.fits")


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


# -- real conventions: overscan, prescan, sections, two cameras --------------------------
CAL_PLAN = NightPlan(n_bias=2, n_dome=1, n_twilight=0, science_fields=1, exposures_per_field=1,
                     standard=False, stars_per_chip=15)


@pytest.fixture(scope="module", params=["omegacam-small", "widecam"])
def camera_night(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[str, Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp(request.param)
    return request.param, out, simulate_night(out, PRESETS[request.param], seed=3, plan=CAL_PLAN)


def exposure_file(folder: Path, truth: dict[str, Any], kind: str) -> tuple[Path, dict[str, Any]]:
    found = next(e for e in truth["exposures"] if e["type"] == kind)
    return folder / found["file"], found


def cut_after(path: Path, extensions: int) -> bytes:
    """The file cut at an extension boundary: the primary and the first ``extensions``
    extensions, still valid FITS."""
    with fits.open(path) as hdul:
        end = hdul.fileinfo(extensions + 1)["hdrLoc"]
    return path.read_bytes()[:end]


def test_raw_pixels_are_uint16_with_bzero_and_bias_columns(
        camera_night: tuple[str, Path, dict[str, Any]]) -> None:
    preset, folder, truth = camera_night
    spec = PRESETS[preset]
    path, _ = exposure_file(folder, truth, "bias")
    header = fits.getheader(path, 1)  # as stored: signed 16 bits and an offset
    assert header["BITPIX"] == 16 and header["BZERO"] == 32768
    assert header["NAXIS1"] == spec.raw_nx == spec.nx + 32 if preset == "omegacam-small" \
        else header["NAXIS1"] == spec.nx + 24
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            chip = truth["chips"][hdu.name if preset == "omegacam-small" else hdu.header["DETNAME"]]
            raw = hdu.data
            assert raw.dtype == np.uint16 and raw.shape == (spec.ny, spec.raw_nx)
            bias = raw[:, -32:] if preset == "omegacam-small" else raw[:, :24]
            # the bias columns hold the bias level and read noise: no light, no hot pixels
            assert abs(bias.mean() - chip["bias_level"]) < 0.5
            assert abs(bias.std() - chip["read_noise"]) < 0.1 * chip["read_noise"]
            assert bias.max() < chip["bias_level"] + 8 * chip["read_noise"]
            # hot pixels are where the truth says, in trimmed (data-section) coordinates
            data = raw[:, :-32] if preset == "omegacam-small" else raw[:, 24:]
            hot = np.array(chip["hot_pixels"])
            assert (data[hot[:, 0], hot[:, 1]] > chip["bias_level"] + 2000).all()
            assert chip["nx"] == spec.nx and chip["raw_nx"] == spec.raw_nx
    if preset == "omegacam-small":
        assert header["HIERARCH ESO DET OUT1 OVSCX"] == 32
        assert header["HIERARCH ESO DET OUT1 PRSCX"] == 0
        assert fits.getheader(path)["HIERARCH ESO DET CHIPS"] == 4
        assert list(truth["chips"]) == ["ESO_CCD_#65", "ESO_CCD_#66", "ESO_CCD_#67",
                                        "ESO_CCD_#68"]
        assert truth["chips"]["ESO_CCD_#65"]["overscan_section"] == "[257:288,1:512]"
        assert truth["chips"]["ESO_CCD_#65"]["overscan_x"] == 32
    else:
        primary = fits.getheader(path)
        assert primary["INSTRUME"] == "WFC/INT 2" and primary["OBSTYPE"] == "zero"
        assert primary["NEXTEND"] == 4 and ":" in primary["RA"]
        assert header["EXTNAME"] == header["DETNAME"] == "CCD 1/A"
        assert header["DATASEC"] == "[25:280,1:512]" and header["BIASSEC"] == "[1:24,1:512]"
        assert header["EGAIN"] == truth["chips"]["CCD 1/A"]["gain"]
        assert truth["chips"]["CCD 1/A"]["prescan_x"] == 24
        assert truth["chips"]["CCD 1/A"]["data_section"] == "[25:280,1:512]"
        flat, _ = exposure_file(folder, truth, "dome")
        assert fits.getheader(flat)["OBSTYPE"] == "dome flat"
        assert fits.getheader(flat)["FILTER1"] == "r 50%"


def test_wcs_refers_to_the_raw_columns(camera_night: tuple[str, Path, dict[str, Any]]) -> None:
    """The brightest star of a chip lies where the header's WCS (less the pointing error)
    puts it in raw columns: prescan included."""
    preset, folder, truth = camera_night
    path, exposure = exposure_file(folder, truth, "science")
    stars = truth["fields"][exposure["field"]]["stars"]
    with fits.open(path) as hdul:
        hdu = hdul[1]
        wcs = true_wcs(hdu.header, exposure)
        x, y = wcs.world_to_pixel_values([s["ra"] for s in stars], [s["dec"] for s in stars])
        data_x = (24, 24 + 256) if preset == "widecam" else (0, 256)
        inside = (x > data_x[0] + 5) & (x < data_x[1] - 5) & (y > 5) & (y < 512 - 5)
        best = int(np.argmin(np.where(inside, [s["mag"] for s in stars], 99)))
        peak = np.unravel_index(np.argmax(hdu.data[int(y[best]) - 3:int(y[best]) + 4,
                                                   int(x[best]) - 3:int(x[best]) + 4]), (7, 7))
    # the peak within a pixel or so of the predicted position, in raw columns
    assert abs(int(x[best]) - 3 + peak[1] - x[best]) < 1.6
    assert abs(int(y[best]) - 3 + peak[0] - y[best]) < 1.6


def test_same_seed_same_bytes_for_every_style(tmp_path: Path) -> None:
    plan = NightPlan(n_bias=1, n_dome=0, n_twilight=0, science_fields=0, standard=False)
    for preset in ("omegacam-small", "widecam"):
        simulate_night(tmp_path / preset / "a", PRESETS[preset], seed=5, plan=plan)
        simulate_night(tmp_path / preset / "b", PRESETS[preset], seed=5, plan=plan)
        assert digest(tmp_path / preset / "a") == digest(tmp_path / preset / "b")


def test_ingest_records_sections_and_checksums(
        camera_night: tuple[str, Path, dict[str, Any]]) -> None:
    preset, folder, truth = camera_night
    for kind in ("bias", "science"):
        path, _ = exposure_file(folder, truth, kind)
        exposure = read_exposure(path, path.name)
        assert exposure.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        check_complete(exposure)
        with fits.open(path) as original:
            for part in exposure.parts:
                assert part.chip is not None
                chip = truth["chips"][part.chip]
                a = part.attributes
                assert a["raw_sha256"] == exposure.sha256
                assert part.sha256 == hashlib.sha256(part.data).hexdigest()
                assert (a["nx"], a["ny"]) == (256, 512)  # trimmed
                assert a["data_section"] == chip["data_section"]
                assert a["overscan_section"] == chip["overscan_section"]
                assert abs(a["overscan_level"] - chip["bias_level"]) < 0.5
                assert a["gain"] == chip["gain"]
                with fits.open(io.BytesIO(part.data)) as stored:
                    # the pixels are the camera's, untouched; the header says how to trim
                    assert np.array_equal(stored[0].data, original[a["extension"]].data)
                    assert stored[0].data.dtype == np.uint16
                    assert stored[0].header["DATASEC"] == a["data_section"]
                    assert stored[0].header["BIASSEC"] == a["overscan_section"]
                    trimmed = overscan_correct(
                        stored[0].data, parse_section(a["data_section"]),
                        parse_section(a["overscan_section"]), a["overscan_level"])
                    assert trimmed.shape == (512, 256)
                    if kind == "bias":  # what is left is the bias structure and noise
                        assert abs(float(np.median(trimmed)) - chip["bias_slope"] / 2) < 1.0
    if preset == "widecam":
        assert exposure.parts[0].name == (f"raw/WFC%2FINT%202/2003-02-14/{path.name[:-5]}/"
                                          "CCD%201%2FA.fits")
        assert exposure.parts[0].filter in ("r 50%", "Harris V")
        assert exposure.parts[0].attributes["ra"] == pytest.approx(150.0, abs=1e-5)
    else:
        assert exposure.parts[3].name.endswith("/ESO_CCD_#68.fits")


def test_translators_say_where_the_data_is() -> None:
    omegacam = OmegaCamTranslator(fits.Header())
    ext = fits.Header({"HIERARCH ESO DET OUT1 PRSCX": 48, "HIERARCH ESO DET OUT1 OVSCX": 48,
                       "HIERARCH ESO DET OUT1 PRSCY": 0, "HIERARCH ESO DET OUT1 OVSCY": 100})
    data, bias = omegacam.sections(ext, (4200, 2144))
    assert format_section(data) == "[49:2096,1:4100]"
    assert bias is not None and format_section(bias) == "[2097:2144,1:4100]"
    assert omegacam.chip_names(32)[-1] == "ESO_CCD_#96"
    with pytest.raises(IngestError, match="OVSCX"):
        omegacam.sections(fits.Header({"HIERARCH ESO DET OUT1 OVSCX": 300}), (10, 300))
    widecam = WideCamTranslator(fits.Header({"RA": "10:00:00.0", "DEC": "-30:30:00"}))
    assert widecam.ra_dec() == pytest.approx((150.0, -30.5))
    data, bias = widecam.sections(fits.Header({"DATASEC": "[25:280,1:512]"}), (512, 280))
    assert format_section(data) == "[25:280,1:512]" and bias is None
    with pytest.raises(IngestError, match="DATASEC"):
        widecam.sections(fits.Header({"DATASEC": "[25:900,1:512]"}), (512, 280))
    assert widecam.chip(fits.Header({"EXTNAME": "CCD 3/C"}), 3) == "CCD 3/C"
    assert AweTranslator(fits.Header()).sections(fits.Header(), (4, 5))[1] is None


def test_incomplete_and_bad_exposures_are_refused(
        camera_night: tuple[str, Path, dict[str, Any]], tmp_path: Path) -> None:
    preset, folder, truth = camera_night
    path, _ = exposure_file(folder, truth, "bias")
    cut = read_exposure(cut_after(path, 2), "cut.fits")  # valid FITS: it reads
    assert len(cut.parts) == 2
    if preset == "omegacam-small":  # the convention names the chips of the declared count
        with pytest.raises(IncompleteExposure, match="missing ESO_CCD_#67, ESO_CCD_#68"):
            check_complete(cut)
    else:  # NEXTEND counts them; the catalogue's list names them
        with pytest.raises(IncompleteExposure, match=r"NEXTEND declares 4 chips, the file "
                                                     r"holds 2 \(CCD 1/A, CCD 2/B\)"):
            check_complete(cut)
        with pytest.raises(IncompleteExposure, match="missing CCD 3/C, CCD 4/D"):
            check_complete(cut, set(truth["chips"]))
    with fits.open(path) as hdul:
        hdul[2].header["EXTNAME" if preset == "omegacam-small" else "DETNAME"] = \
            hdul[1].header["EXTNAME"]
        hdul.writeto(tmp_path / "twice.fits")
        hdul[1].header["EXTNAME"] = "ESO_CCD_#99"
        hdul[1].header["DATASEC"] = "[0:10,1:5]"
        hdul.writeto(tmp_path / "odd.fits")
    with pytest.raises(IngestError, match="appear more than once"):
        read_exposure(tmp_path / "twice.fits", "twice.fits")
    with pytest.raises(IngestError, match="ESO_CCD_#99 not among the 4 chips"
                       if preset == "omegacam-small" else r"DATASEC: section '\[0:10,1:5\]'"):
        read_exposure(tmp_path / "odd.fits", "odd.fits")
