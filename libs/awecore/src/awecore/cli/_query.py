"""``awe query EXPR`` and ``awe shell``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console

from ..model import (
    DBObject,
    Field,
    Ref,
    Scalar,
    Struct,
    default_columns,
    parse_query,
    resolve_path,
)
from ._output import Format, emit
from ._tables import QueryFormat, QueryFormatOption, to_astropy, write_table

console = Console()
#: matplotlib's backends that only write files (what it picks where there is no display)
_FILE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def all_columns(cls: type[DBObject]) -> list[str]:
    """Every value of the class (``--columns all``): scalars, and groups of values field
    by field; references as oids."""
    cols: list[str] = []
    for name, field in cls.fields.items():
        if isinstance(field, Struct):
            cols.extend(f"{name}.{sub}" for sub in field.struct.fields)
        elif isinstance(field, Scalar | Ref):
            cols.append(name)
    return cols


def _value(obj: Any, path: str) -> Any:
    """A dotted path's value; references on the way load a page's worth at once."""
    value = obj
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def _columns(text: str | None, cls: type[DBObject]) -> list[str]:
    if text is None:
        return default_columns(cls)
    if text.strip() == "all":
        return all_columns(cls)
    names = [c.strip() for c in text.split(",") if c.strip()]
    for name in names:
        resolve_path(cls, name.split("."))  # InvalidQuery naming the bad part
    return names


def query(
    expression: Annotated[str, typer.Argument(help="e.g. \"RawFrame.chip.name == 'ccd53'\"")],
    count: Annotated[bool, typer.Option("--count", help="print only the number")] = False,
    oids: Annotated[bool, typer.Option("--oids", help="print one oid per line")] = False,
    limit: Annotated[int, typer.Option(min=0, help="at most this many rows (0: all)")] = 50,
    columns: Annotated[str | None, typer.Option(
        help="comma-separated columns (dotted paths follow references: chip.name), or "
             "'all'; default: oid, type, name/chip/filter/date where the class has them, "
             "is_valid, quality_flags, creator, creation_date")] = None,
    format: QueryFormatOption = QueryFormat.table,
) -> None:
    """Run a DSL expression against the catalog and print the result (as a VOTable or a
    FITS table too, with the model's units: `--format votable > result.vot`)."""
    from ..client import current
    from ..sources import Source, SourceRow

    q = parse_query(expression)
    q._session = current()
    if count:
        typer.echo(len(q))
        return
    limited = q.limit(limit) if limit else q
    if q.root is Source:
        if oids:
            raise typer.BadParameter("sources have no oids: leave out --oids")
        names = _source_columns(columns, list(SourceRow.model_fields))
        rows = [{k: row.model_dump()[k] for k in names} for row in limited]
        _emit(rows, format, "Source", names, {n: Source.fields.get(n) for n in names})
        return
    if oids:
        for obj in limited:
            assert obj.record is not None
            typer.echo(obj.record.oid)
        return
    names = _columns(columns, q.root)
    objects = list(limited)
    rows = [{name: _value(o, name) for name in names} for o in objects]
    _emit(rows, format, q.root.__name__, names,
          {n: resolve_path(q.root, n.split("."))[-1] for n in names})


def _emit(rows: list[dict[str, Any]], fmt: QueryFormat, what: str, names: list[str],
          fields: dict[str, Field | None]) -> None:
    """A listing's formats as every command has them; a VOTable or FITS table with the
    fields' units and descriptions."""
    if fmt in (QueryFormat.votable, QueryFormat.fits):
        write_table(to_astropy(rows, names, fields), fmt)
    else:
        emit(rows, Format(fmt.value), title=f"{what}: {len(rows)} shown", columns=names)


def _source_columns(text: str | None, known: Sequence[str]) -> list[str]:
    from ..errors import InvalidQuery

    if text is None or text.strip() == "all":
        return list(known)
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidQuery(f"sources have no column(s) {unknown}; they have {list(known)}")
    return names


def shell() -> None:
    """An IPython prompt with `awe`, every class of the object model and `pylab` loaded."""
    try:
        import IPython
        from matplotlib import pylab
    except ImportError as exc:
        typer.echo(f"awe shell needs IPython and matplotlib ({exc}): "
                   "pip install 'awecore[shell]'", err=True)
        raise typer.Exit(1) from None

    import awecore as awe
    from awecore.model import registry

    namespace: dict[str, object] = {"awe": awe, "Source": awe.Source, "pylab": pylab,
                                    **{c.__name__: c for c in registry}}
    try:
        client = awe.connect()
        console.print(f"AWE shell, connected to {client.url}. Loaded: `awe`, `pylab` and the "
                      "object model. Try: len(RawFrame.select())", highlight=False)
    except awe.AweError as exc:
        console.print(f"AWE shell (not connected: {exc.detail})")
    # where there is a display, figures show as they are drawn and the prompt stays free
    # (IPython's --matplotlib); without one (Agg) pylab.savefig('plot.png') writes them
    gui = pylab.get_backend().lower() not in _FILE_BACKENDS
    IPython.start_ipython(argv=["--matplotlib"] if gui else [], user_ns=namespace)


def register(app: typer.Typer) -> None:
    app.command()(query)
    app.command()(shell)
