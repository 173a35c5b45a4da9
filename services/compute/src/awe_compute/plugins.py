"""Users' own products in compute: product modules loaded at start-up (the API plans their
classes, workers make them), and their classes registered with the catalog.

Registration is idempotent, so the API and every worker register at start-up; the catalog
being out of reach is retried with a backoff, a refusal (a clash with a class registered
under that name) is logged with the catalog's reason and not retried: the catalog then
refuses the class's objects, and jobs making them fail saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from awecore.client import AsyncCatalogClient
from awecore.errors import AweError, ServiceUnavailable
from awecore.server import keep_running
from awecore.targets import Plugin, aregister_classes, load_plugins

__all__ = ["load", "register_classes"]

log = structlog.get_logger("awe.compute.plugins")


def load() -> list[Plugin]:
    """Import the product modules (entry points ``awecore.products``, AWE_PRODUCT_MODULES);
    one that fails is logged and left out, the others and awecore's products still work."""
    plugins = load_plugins()
    for p in plugins:
        if p.error:
            log.error("product module not loaded", module=p.module, named_by=p.source,
                      error=p.error)
        else:
            log.info("product module loaded", module=p.module, named_by=p.source,
                     classes=list(p.classes), recipes=list(p.recipes))
    return plugins


async def register_classes(catalog: AsyncCatalogClient, plugins: list[Plugin],
                           stop: asyncio.Event) -> None:
    """Register the plugins' classes (bases first), then wait for ``stop``: a loop that
    is done is not a dead one."""
    classes = [c for p in plugins for c in p.classes]

    async def session(progress: Callable[[], None]) -> None:
        for cls in classes:
            try:
                (info,) = await aregister_classes(catalog, [cls])
                log.info("product class registered", cls=cls, version=info.spec.version,
                         outcome=info.outcome)
            except ServiceUnavailable:
                raise
            except AweError as exc:
                log.error("product class refused by the catalog", cls=cls, error=exc.detail)
        progress()
        await stop.wait()

    if classes:
        await keep_running(stop, "product classes", session, (ServiceUnavailable, OSError))
    else:
        await stop.wait()
