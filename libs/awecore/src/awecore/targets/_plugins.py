"""Users' own products: classes and recipes from Python packages other than awecore.

A package declares product classes as awecore declares its own (DBObject subclasses with
Scalar and Ref fields, a ``schema_version``) and, when imported, registers a recipe for each
with :func:`register_recipe`: the planner then makes them by the same rules as awecore's
products (inputs found by class, validity and QC policy; parameters and software version
recorded and compared), and the maker registers them with their inputs as references, so
their lineage reaches the raw data.

Where they are found (:func:`load_plugins`): the entry point group ``awecore.products``
(``[project.entry-points."awecore.products"] skyback = "awe_skyback"`` in the package's
pyproject: installing it is enabling it) and ``AWE_PRODUCT_MODULES`` (module names,
comma-separated: a module that is not a package). The compute service and its workers load
them at start-up and register their classes' schemas with the catalog
(:func:`aregister_classes`; idempotent), as ``awe classes register`` does. At a prompt,
importing the package is all it takes.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from ..client import AsyncCatalogClient, CatalogClient
from ..model import ClassInfo, DBObject, ProcessTarget, is_builtin, registry, schema_of
from ..pipelines import QC
from ._policy import REFUSED
from ._recipes import RECIPES, Recipe

__all__ = ["ENTRY_POINT_GROUP", "MODULES_ENV", "Plugin", "aregister_classes", "load_plugins",
           "plugin_classes", "register_classes", "register_recipe"]

ENTRY_POINT_GROUP = "awecore.products"
MODULES_ENV = "AWE_PRODUCT_MODULES"
#: the recipes awecore brings: a plugin may not replace them
_OWN = frozenset(RECIPES)


@dataclass(frozen=True)
class Plugin:
    """A module of products: where it was named, the classes and recipes it declares, or
    why it could not be imported."""

    module: str
    source: str
    classes: tuple[str, ...] = ()
    recipes: tuple[str, ...] = ()
    error: str | None = None


def register_recipe(name: str, recipe: Recipe, version: str | None = None,
                    refuses: QC | None = None) -> Recipe:
    """Let the planner make class ``name`` with ``recipe`` (called by a plugin module when
    imported; again with the same recipe, nothing changes).

    ``version``, the plugin's version, is recorded among the product's parameters
    (``plugin_version``), so a product made by another version of the plugin is remade, as a
    product of awecore made by other software is. ``refuses``: QC flags of inputs the product
    is not made from (the QC policy). A mistake in the declaration is a ValueError that says
    what to change, raised on import, before anything is made."""
    if recipe.cls != name:
        raise ValueError(f"the recipe registered as {name} makes {recipe.cls}")
    if name in _OWN:
        raise ValueError(f"awecore makes {name} itself: give your class another name")
    if name not in registry:
        raise ValueError(f"no class {name}: declare it (a subclass of ProcessTarget) before "
                         "its recipe")
    cls = registry.get(name)
    if is_builtin(cls) or cls.abstract:
        raise ValueError(f"{name} is {'abstract' if cls.abstract else 'a class of awecore'}: "
                         "a recipe makes a concrete class of your own")
    if not issubclass(cls, ProcessTarget):
        raise ValueError(f"derive {name} from ProcessTarget: a made product records its "
                         "software version and parameters")
    refs = cls.ref_fields()
    wanted = {"chip": False, **({"filter": False} if recipe.needs_filter else {})}
    for inp in recipe.inputs:
        if inp.cls not in registry:
            raise ValueError(f"input {inp.ref} of {name}: no class {inp.cls}")
        wanted[inp.ref] = bool(inp.raw or inp.each)
    if recipe.raw_path:
        wanted.setdefault(recipe.raw_path[0], False)
    for ref, many in wanted.items():
        if ref not in refs or refs[ref].many != many:
            raise ValueError(f"{name} needs a reference {ref} = Ref(..."
                             f"{', many=True' if many else ''}): the maker records it")
    if version is not None:
        recipe = dataclasses.replace(recipe, params={**recipe.params, "plugin_version": version})
    RECIPES[name] = recipe
    if refuses:
        REFUSED[name] = refuses
    return recipe


def _modules(env: Mapping[str, str]) -> list[tuple[str, str, Any]]:
    """(module, where it was named, its entry point or None), each module once."""
    found: dict[str, tuple[str, str, Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":", 1)[0].strip()
        found.setdefault(module, (module, f"entry point {ep.name} ({ENTRY_POINT_GROUP})", ep))
    for module in env.get(MODULES_ENV, "").split(","):
        if module.strip():
            found.setdefault(module.strip(), (module.strip(), MODULES_ENV, None))
    return list(found.values())


def _within(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def plugin_classes(module: ModuleType | str) -> list[type[DBObject]]:
    """The classes of the model a module (and its submodules) declares, each after the
    classes of the module it derives from or refers to: the order the catalog takes them
    in (it refuses a base or a reference target it does not know)."""
    root = module if isinstance(module, str) else module.__name__
    left = {c.__name__: c for c in sorted(registry, key=lambda c: c.__name__)
            if _within(c.__module__, root) and not is_builtin(c)}
    def needs(c: type[DBObject]) -> set[str]:
        named = {b.__name__ for b in c.__bases__} | {
            r.target_name for r in c.ref_fields().values()}
        return (named - {c.__name__}) & set(left)

    ordered: list[type[DBObject]] = []
    while left:
        ready = [c for c in left.values() if not needs(c)] or list(left.values())
        for c in ready:  # (all of them if they refer to each other: the catalog will say)
            ordered.append(left.pop(c.__name__))
    return ordered


def load_plugins(modules: Iterable[str] = (), env: Mapping[str, str] | None = None
                 ) -> list[Plugin]:
    """Import every product module: those of the entry point group, of
    ``AWE_PRODUCT_MODULES`` (in ``env``, by default the environment) and ``modules``.
    A module that fails to import is reported (``Plugin.error``), not raised: the others,
    and awecore's own products, still work."""
    named = _modules(os.environ if env is None else env)
    named += [(m, "asked", None) for m in modules if m not in {n for n, _, _ in named}]
    out = []
    for module, source, ep in named:
        try:
            loaded = ep.load() if ep is not None else importlib.import_module(module)
            if callable(loaded) and not isinstance(loaded, ModuleType):
                loaded()  # an entry point may name a function that registers
            mod = sys.modules[module]
        except Exception as exc:  # a plugin's own code: whatever it raises is reported
            out.append(Plugin(module, source, error=f"{type(exc).__name__}: {exc}"))
            continue
        recipes = tuple(n for n, r in RECIPES.items()
                        if _within(getattr(r.make, "__module__", ""), mod.__name__))
        out.append(Plugin(module, source, tuple(c.__name__ for c in plugin_classes(mod)),
                          recipes))
    return out


def _schemas(classes: Iterable[type[DBObject] | str]) -> list[dict[str, Any]]:
    return [schema_of(registry.get(c) if isinstance(c, str) else c).model_dump(mode="json")
            for c in classes]


def register_classes(catalog: CatalogClient, classes: Iterable[type[DBObject] | str]
                     ) -> list[ClassInfo]:
    """Register classes' schemas with the catalog, bases first (the same schema again is
    ``unchanged``); a clash raises Conflict with the catalog's reason."""
    return [ClassInfo.model_validate(catalog.request("POST", "/classes", json=body))
            for body in _schemas(classes)]


async def aregister_classes(catalog: AsyncCatalogClient,
                            classes: Iterable[type[DBObject] | str]) -> list[ClassInfo]:
    """:func:`register_classes` for a service's event loop."""
    return [ClassInfo.model_validate(await catalog.request("POST", "/classes", json=body))
            for body in _schemas(classes)]
