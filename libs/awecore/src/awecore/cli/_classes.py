"""``awe classes list|show|register``: the classes of the object model, and your own.

Your own product classes come from Python packages (the entry point group
``awecore.products``) or modules named in ``AWE_PRODUCT_MODULES`` (or ``--module``);
``register`` sends their schemas to the catalog, which then validates and queries their
objects as it does awecore's. Registering the same schema again changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ._output import Format, FormatOption, emit

err = Console(stderr=True)
classes_app = typer.Typer(no_args_is_help=True,
                          help="Classes of the object model: list, show, register your own.")


@classes_app.command("list")
def list_classes(format: FormatOption = Format.table) -> None:
    """Every class the catalog knows: awecore's and those registered."""
    from ..client import current

    got: dict[str, Any] = current().request("GET", "/classes")
    rows = [{"class": name, "abstract": c["abstract"], "bases": c["bases"][:1],
             "fields": len(c["fields"])} for name, c in sorted(got.items())]
    emit(rows, format, title="classes")


@classes_app.command("show")
def show(name: Annotated[str, typer.Argument(help="a class name, e.g. BiasFrame")],
         format: FormatOption = Format.table) -> None:
    """A class's own fields (kind, type or target, unit, doc), its bases and version."""
    from ..client import current
    from ..model import ClassInfo

    info = ClassInfo.model_validate(current().request("GET", f"/classes/{name}"))
    spec = info.spec
    rows = [{"field": n, "kind": f.kind,
             "type": f.type or (("many " if f.many else "") + str(f.target)) if f.kind != "struct"
             else f.struct, "unit": f.unit, "doc": f.doc} for n, f in spec.fields.items()]
    origin = "awecore" if info.builtin else f"registered by {info.registered_by}"
    emit(rows, format, columns=["field", "kind", "type", "unit", "doc"],
         title=f"{spec.name}({', '.join(spec.bases)}) version {spec.version}, {origin}")


@classes_app.command("register")
def register_own(
    module: Annotated[list[str] | None, typer.Option(
        "--module", "-m", help="a module of product classes to load, beside installed "
        "packages (entry points awecore.products) and AWE_PRODUCT_MODULES")] = None,
    format: FormatOption = Format.table,
) -> None:
    """Register the classes of your product modules with the catalog (idempotent).

    Each class's schema (fields, bases, version) is sent; the catalog refuses a clash
    (a name of awecore's own classes, the same version with another schema, an older
    version, a new version that changes a field) and says why."""
    from ..client import current, settings_from_env
    from ..errors import AweError
    from ..targets import load_plugins, register_classes

    plugins = load_plugins(module or (), settings_from_env())
    for p in plugins:
        if p.error:
            err.print(f"[bold red]not loaded[/]: {escape(p.module)} ({escape(p.source)}): "
                      f"{escape(p.error)}", soft_wrap=True)
    classes = [c for p in plugins if not p.error for c in p.classes]
    if not classes:
        err.print("no product classes to register: install a package with an entry point "
                  "in awecore.products, set AWE_PRODUCT_MODULES or give --module")
        raise typer.Exit(1)
    client = current()
    rows, refused = [], 0
    for cls in classes:
        try:
            (info,) = register_classes(client, [cls])
            rows.append({"class": cls, "version": info.spec.version, "outcome": info.outcome,
                         "versions": info.versions, "reason": ""})
        except AweError as exc:
            refused += 1
            rows.append({"class": cls, "version": None, "outcome": "refused",
                         "versions": [], "reason": exc.detail})
    emit(rows, format, title="classes registered")
    if refused or any(p.error for p in plugins):
        raise typer.Exit(1)


def load_products() -> None:
    """Import the product modules (as compute does), so ``awe get YourClass`` plans and
    shows your own products; one that fails is told by ``awe classes register``."""
    from ..client import settings_from_env
    from ..targets import load_plugins

    load_plugins((), settings_from_env())


def register(app: typer.Typer) -> None:
    app.add_typer(classes_app, name="classes")
