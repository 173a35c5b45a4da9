"""``awe tiles``: which sky tiles cover a position (the ``tile`` of a coadd's data ID)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._output import Format, FormatOption, emit


def tiles(ra: Annotated[float, typer.Option("--ra", help="right ascension (deg)")],
          dec: Annotated[float, typer.Option("--dec", help="declination (deg)")],
          tiling: Annotated[str | None, typer.Option(
              "--tiling", help="KIDS (1 deg) or MINI (0.1 deg); default AWE_TILING, else "
              "KIDS")] = None,
          format: FormatOption = Format.table) -> None:
    """The sky tiles that cover a position, the one whose own cell holds it first; the
    others overlap it by their margins. A coadd is asked for by tile and filter:
    ``awe get CoaddedRegriddedFrame --data-id tile=NAME --data-id filter=F``."""
    from ..errors import InvalidRequest
    from ..tiles import tiles_at

    if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
        raise InvalidRequest(f"RA {ra}, Dec {dec}: RA must be in [0, 360), Dec in [-90, 90]")
    rows = [{"tile": t.name, "ra": round(t.ra, 6), "dec": round(t.dec, 6),
             "size_deg": t.size, "contains": t.contains(ra, dec)}
            for t in tiles_at(ra, dec, tiling)]
    emit(rows, format, title=f"tiles at RA {ra}, Dec {dec}")


def register(app: typer.Typer) -> None:
    app.command("tiles")(tiles)
