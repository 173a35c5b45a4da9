"""``awe simulate night``, ``survey`` and ``tile``, and ``awe ingest``: raw data in;
``awe download`` (``_download``): a product out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from ._download import download

if TYPE_CHECKING:
    from ..sim import InstrumentSpec

console = Console()
simulate_app = typer.Typer(no_args_is_help=True, help="Simulated data.")


INSTRUMENT_HELP = ("tiny, small (the simulator's camera), omegacam, omegacam-small (ESO "
                   "conventions, 32-column overscan) or widecam (NOAO-like, prescan)")


@simulate_app.command("night")
def simulate_night(
    out: Annotated[Path, typer.Option(help="folder for the raw files and truth.json")],
    seed: Annotated[int, typer.Option(help="same seed, same night")] = 1,
    instrument: Annotated[str, typer.Option(help=INSTRUMENT_HELP)] = "small",
    date: Annotated[str, typer.Option(help="night, YYYY-MM-DD")] = "2003-02-14",
    chips: Annotated[str | None, typer.Option(help="mosaic layout, e.g. 8x4")] = None,
    size: Annotated[str | None, typer.Option(help="chip size in pixels, e.g. 2048x4100")] = None,
) -> None:
    """Write a night of raw multi-extension FITS, and the truth they were made from."""
    from ..sim import NightPlan, simulate_night

    spec = _instrument(instrument, chips, size)
    plan = NightPlan()
    n = (plan.n_bias + (plan.n_dome + plan.n_twilight) * len(spec.filters)
         + (plan.science_fields * plan.exposures_per_field + 1) * len(spec.filters))
    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("night", total=n)
        truth = simulate_night(out, spec, seed, _date(date, "--date"), plan,
                               progress=lambda _: bar.advance(task))
    console.print(f"{len(truth['exposures'])} exposures of {spec.n_chips} chips in {out} "
                  f"(truth in {out / 'truth.json'})")


@simulate_app.command("survey")
def simulate_survey(
    out: Annotated[Path, typer.Option(help="folder for the nights (one YYYY-MM-DD folder "
                                           "each), refcat.fits and survey.json")],
    nights: Annotated[int, typer.Option(min=1, max=1000, help="consecutive nights")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="same seed, same survey")] = 1,
    instrument: Annotated[str, typer.Option(help=INSTRUMENT_HELP)] = "small",
    start: Annotated[str, typer.Option(help="the first night, YYYY-MM-DD")] = "2003-02-14",
    calib_every: Annotated[int, typer.Option(
        min=1, help="calibrations (biases, flats, the standard field) on the first night and "
                    "every K-th night after it")] = 3,
    calib_nights: Annotated[str | None, typer.Option(
        help="or on exactly these nights, numbered from 1: e.g. 1,4,5")] = None,
    fields: Annotated[int, typer.Option(min=1, max=10, help="science fields on the survey's "
                                                            "sky; each night observes two")] = 3,
    chips: Annotated[str | None, typer.Option(help="mosaic layout, e.g. 8x4")] = None,
    size: Annotated[str | None, typer.Option(help="chip size in pixels, e.g. 2048x4100")] = None,
) -> None:
    """Write several nights of one camera on one sky, calibrations on some nights only,
    science on every night; a truth file per night and one reference catalogue."""
    from ..sim import SurveyPlan, simulate_survey

    spec = _instrument(instrument, chips, size)
    numbers = None
    if calib_nights is not None:
        try:
            numbers = tuple(int(v) for v in calib_nights.split(",") if v.strip())
        except ValueError:
            raise typer.BadParameter(f"night numbers separated by commas, e.g. 1,4; got "
                                     f"{calib_nights!r}", param_hint="--calib-nights") from None
    try:
        plan = SurveyPlan(nights=nights, start=_date(start, "--start"), calib_every=calib_every,
                          calib_nights=numbers, fields=fields)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("survey", total=plan.n_exposures(spec))
        survey = simulate_survey(out, plan, spec, seed, progress=lambda _: bar.advance(task))
    table = Table(title=f"{nights} nights of {spec.n_chips} chips in {out}")
    for column in ("night", "folder", "calibrations", "fields", "exposures"):
        table.add_column(column)
    for n in survey["nights"]:
        table.add_row(str(n["night"]), n["folder"], ", ".join(n["calibrations"]) or "-",
                      ", ".join(n["fields"]), str(n["exposures"]))
    console.print(table)
    refcat = survey["refcat"]
    if refcat:
        console.print(f"reference catalogue {refcat['name']} in {out / refcat['file']}")
    console.print(f"the survey in {out / 'survey.json'}; ingest it all with `awe ingest {out}`")


@simulate_app.command("tile")
def simulate_tile(
    out: Annotated[Path, typer.Option(help="folder for the nights (one YYYY-MM-DD folder "
                                           "each), refcat.fits, survey.json, tile_truth.json")],
    tile: Annotated[str | None, typer.Option(help="a sky tile, e.g. MINI_149.98_2.00 "
                                                  "(`awe tiles --ra --dec` names them)")] = None,
    ra: Annotated[float | None, typer.Option(help="or the field's centre: RA (deg)")] = None,
    dec: Annotated[float | None, typer.Option(help="and Dec (deg)")] = None,
    nights: Annotated[int, typer.Option(min=1, max=100, help="consecutive nights")] = 2,
    exposures: Annotated[int, typer.Option(min=1, max=100, help="dithered exposures per "
                                                                "night and filter")] = 4,
    dither: Annotated[float, typer.Option(min=0, max=600, help="largest dither offset in RA "
                                                               "and Dec (arcsec)")] = 25.0,
    seed: Annotated[int, typer.Option(min=0, help="same seed, same files")] = 1,
    preset: Annotated[str, typer.Option("--preset", "--instrument",
                                        help=INSTRUMENT_HELP)] = "tiny",
    filters: Annotated[str | None, typer.Option(
        help="filters observed, separated by commas (default: the camera's first)")] = None,
    calib_nights: Annotated[str, typer.Option(
        help="nights with calibrations (biases, flats, the standard field), numbered from "
             "1: e.g. 1,3")] = "1",
    transparency: Annotated[float, typer.Option(
        min=0, max=2, help="largest cloud loss of an exposure (mag)")] = 0.05,
    cosmics: Annotated[bool, typer.Option(help="cosmic rays in the science exposures")] = True,
    trail: Annotated[bool, typer.Option(help="one satellite trail in one exposure")] = True,
    start: Annotated[str, typer.Option(help="the first night, YYYY-MM-DD")] = "2005-03-10",
) -> None:
    """Write dithered exposures of one sky tile over several nights (cosmic rays, one
    satellite trail, clouds), calibrations on some nights, and the truth of every star and
    exposure in tile_truth.json."""
    from ..sim import NightPlan, simulate_tile

    centre = ra is not None and dec is not None
    if (tile is not None) == (centre or ra is not None or dec is not None) or \
            (tile is None and not centre):
        raise typer.BadParameter("give --tile NAME, or --ra and --dec", param_hint="--tile")
    spec = _instrument(preset, None, None)
    try:
        numbers = tuple(int(v) for v in calib_nights.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"night numbers separated by commas, e.g. 1,3; got "
                                 f"{calib_nights!r}", param_hint="--calib-nights") from None
    names = [f.strip() for f in filters.split(",") if f.strip()] if filters else None
    plan, n_filters = NightPlan(), len(spec.filters)
    calibrations = plan.n_bias + (plan.n_dome + plan.n_twilight + 1) * n_filters
    total = (len({n for n in numbers if 1 <= n <= nights}) * calibrations
             + nights * exposures * len(names or [None]))
    with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("tile", total=total)
        try:
            truth = simulate_tile(out, spec, seed, ra=ra, dec=dec, tile=tile, nights=nights,
                                  exposures=exposures, dither_arcsec=dither, filters=names,
                                  calib_nights=numbers, cosmics=cosmics, trail=trail,
                                  transparency=transparency, start=_date(start, "--start"),
                                  plan=plan, progress=lambda _: bar.advance(task))
        except (ValueError, KeyError) as exc:
            raise typer.BadParameter(str(exc).strip("'\"")) from None
    t = truth["tile"]
    console.print(f"{t['field']} ({t['ra']:.5f}, {t['dec']:.5f}): {len(truth['exposures'])} "
                  f"science exposures of {spec.n_chips} chips over {nights} night(s) in {out}, "
                  f"{len(truth['stars'])} stars")
    console.print(f"the truth in {out / 'tile_truth.json'}; ingest it all with "
                  f"`awe ingest {out}`")


def _instrument(instrument: str, chips: str | None, size: str | None) -> InstrumentSpec:
    """A preset, with its mosaic layout and chip size changed if asked."""
    import dataclasses

    from ..sim import PRESETS

    if instrument not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="instrument")
    spec = PRESETS[instrument]
    if chips:
        cx, cy = _pair(chips, "chips")
        spec = dataclasses.replace(spec, chips_x=cx, chips_y=cy)
    if size:
        nx, ny = _pair(size, "size")
        spec = dataclasses.replace(spec, nx=nx, ny=ny)
    return spec


def _date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"a date YYYY-MM-DD, e.g. 2003-02-14; got {text!r}",
                                 param_hint=what) from None


def _pair(text: str, what: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"write it as AxB, e.g. 4x2; got {text!r}",
                                 param_hint=what) from None
    if not (0 < a <= 10000 and 0 < b <= 10000):
        raise typer.BadParameter("both numbers must be between 1 and 10000", param_hint=what)
    return a, b


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="raw FITS files or folders of them")],
    privileges: Annotated[int, typer.Option(min=1, max=5,
                                            help="who may see the frames (3: everyone)")] = 3,
) -> None:
    """Validate, classify, split per chip, store and register raw files.

    A file already ingested (same name, same sha256) is a no-op; other content under an
    existing name, the same content under a new name, and an exposure missing chips are
    refused, each file with its reason (the exit code is then 1). A folder written by
    `awe simulate survey` (it holds survey.json) is taken whole: its reference catalogue,
    then its nights in order."""
    from ..client import StorageClient, current, settings_from_env
    from ..errors import ServiceUnavailable
    from ..ingest import Ingester

    env = settings_from_env()
    if "AWE_STORAGE_URL" not in env:
        raise ServiceUnavailable("no storage address: set AWE_STORAGE_URL or run `awe up`")
    catalog = current()
    storage = StorageClient(env["AWE_STORAGE_URL"], env.get("AWE_TOKEN"))
    files = _expand(paths)
    total = sum(p.stat().st_size for p in files if p.exists())
    ingester = Ingester(catalog, storage.put, privileges)  # type: ignore[arg-type]  # 1..5 above
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        by_files = bar.add_task("files", total=len(files))
        by_bytes = bar.add_task("bytes", total=total)

        def advance(path: Path, size: int) -> None:
            bar.update(by_files, advance=1, description=f"files ({path.name[:30]})")
            bar.update(by_bytes, advance=size)

        report = ingester.ingest(files, advance)
    table = Table(title=f"ingested {report.files} files, {report.bytes / 1e6:.1f} MB stored")
    table.add_column("class")
    table.add_column("frames", justify="right")
    for cls, n in sorted(report.frames.items()):
        table.add_row(cls, str(n))
    table.add_row("(already there)", str(report.skipped))
    console.print(table)
    if report.already_there:
        console.print(f"{len(report.already_there)} file(s) already there (same name, same "
                      "sha256): nothing to do")
    for path, reason in report.failed.items():
        # the reason as it is: sections like [1:24,1:512] are no markup
        console.print(Text.assemble(("refused", "red"), f" {path}: {reason}"), soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given, the FITS files inside folders, and a survey's files in its order: the
    reference catalogue first (one for every night), then each night as ``survey.json``
    lists them."""
    import json

    from ..ingest import expand
    from ..sim import SURVEY_FILE

    out: list[Path] = []
    for path in paths:
        survey_file = path / SURVEY_FILE
        if not (path.is_dir() and survey_file.is_file()):
            out.extend(expand([path]))
            continue
        try:
            survey = json.loads(survey_file.read_text())
            refcat = survey["refcat"]
            nights = [path / str(n["folder"]) for n in survey["nights"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(f"{survey_file} is no survey description ({exc!r}); "
                                     "give the nights' folders instead") from None
        if refcat:
            out.append(path / str(refcat["file"]))
        out.extend(expand(nights))
        console.print(f"survey {path}: {len(nights)} night(s)"
                      + (f", reference catalogue {refcat['name']}" if refcat else ""))
    return out


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
    app.command()(ingest)
    app.command()(download)
