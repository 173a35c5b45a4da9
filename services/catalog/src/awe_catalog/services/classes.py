"""Users' own classes: registered through the API, versioned, and made into classes of the
object model in every catalog process, so their objects validate and their queries compile
as those of awecore's own classes.

Who may register: any authenticated user a new class (a user adds a product of their own
without asking an admin; the catalogue checks every schema, and a name is taken first come,
first served); a new version of a class only its first registrant, an admin or a service
account (the compute service registers the classes of the plugins it runs); the same
schema again anyone (registration is idempotent, so every worker may register at start-up).

Several catalog processes on one database stay in step: each makes every registered class
at start-up, a registration is announced at commit (``NOTIFY awe_classes``, the schema
itself as payload, so a listener makes the class before it serves the next request), and a
process that meets a name it does not know on ``GET /classes/{name}`` or ``POST /classes``
reads the table first. A lost listening connection is made again, and the table read
anew. Other sites do not share the table: each site's compute service registers the
classes of the plugins it runs (see ``awecore.targets.load_plugins``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg
import structlog
from pydantic import ValidationError

from awecore.errors import Conflict, Forbidden, InvalidObject, NotFound
from awecore.model import (
    ClassInfo,
    ClassSchema,
    builtin_name,
    check_schema,
    class_from_schema,
    is_builtin,
    registry,
    schema_of,
)
from awecore.server import pg

from ..models import Caller
from ..storage.classes import CHANNEL, ClassStore, StoredClass

__all__ = ["ClassService", "follow_classes", "install"]

log = structlog.get_logger("awe.catalog.classes")
#: a schema this long or longer is announced by name only (PostgreSQL takes 8000 bytes)
_PAYLOAD_LIMIT = 7000


def install(schemas: Iterable[ClassSchema]) -> list[str]:
    """Make classes from registered schemas, each once its bases are known; returns the
    names made or replaced. One that cannot be made is logged and left out (it was checked
    when registered: only a catalog older than its bases' registration can fail here)."""
    pending = list(schemas)
    made: list[str] = []
    while pending:
        ready = [s for s in pending if all(b in registry for b in s.bases)]
        if not ready:
            for s in pending:
                log.error("registered class left out: a base class is unknown", cls=s.name,
                          bases=list(s.bases))
            break
        for s in ready:
            pending.remove(s)
            before = registry.get(s.name) if s.name in registry else None
            try:
                if class_from_schema(s) is not before:
                    made.append(s.name)
            except InvalidObject as exc:
                log.error("registered class left out", cls=s.name, version=s.version,
                          error=exc.detail)
    return made


def _info(stored: StoredClass, versions: list[StoredClass],
          outcome: str | None = None) -> ClassInfo:
    return ClassInfo.model_validate({
        "spec": stored.schema, "versions": [v.schema.version for v in versions],
        "registered_by": stored.registered_by, "registered_at": stored.registered_at,
        "outcome": outcome})


class ClassService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def load(self) -> list[str]:
        """Make every registered class this process does not have as the table says."""
        async with self.pool.acquire() as conn:
            schemas = await ClassStore(conn).latest()
        return install(schemas)

    async def register(self, schema: ClassSchema, caller: Caller) -> ClassInfo:
        """Register a class or a new version of one (see the module's rules); the same
        schema again is ``unchanged`` (or ``superseded``: an older version, as stored)."""
        name = schema.name
        if builtin_name(name):
            raise Conflict(f"{name} is a class of awecore itself: give your class another "
                           "name")
        async with self.pool.acquire() as conn, conn.transaction():
            store = ClassStore(conn)
            await store.lock()
            install(await store.latest())  # bases and targets other processes registered
            versions = await store.versions(name)
            latest = versions[-1] if versions else None
            if latest is not None:
                same = next((v for v in versions if v.schema.version == schema.version), None)
                if same is not None:
                    differences = schema.differences(same.schema)
                    if differences:
                        raise Conflict(
                            f"{name} version {schema.version} is registered already with "
                            f"another schema ({'; '.join(differences)}): register the change "
                            f"as version {latest.schema.version + 1}", _problems(differences))
                    return _info(same, versions,
                                 "unchanged" if same is latest else "superseded")
                if schema.version < latest.schema.version:
                    raise Conflict(f"{name} is at version {latest.schema.version}; version "
                                   f"{schema.version} is older and was never registered")
                owner = versions[0].registered_by
                if not caller.sees_all and caller.name != owner:
                    raise Forbidden(f"{name} was registered by {owner}: only they, an admin "
                                    "or a service account may register a new version of it")
                changes = schema.changes_from(latest.schema)
                if changes:
                    raise Conflict(
                        f"version {schema.version} of {name} may only add fields to version "
                        f"{latest.schema.version} (objects stored under it must stay valid): "
                        + "; ".join(changes), _problems(changes))
            problems = check_schema(schema)
            if problems:
                detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
                raise InvalidObject(f"class {name} cannot be registered: {detail}", problems)
            at = await store.insert(schema, caller.name)
            payload = schema.model_dump_json()
            await store.notify(payload if len(payload) < _PAYLOAD_LIMIT else name)
        class_from_schema(schema)
        log.info("class registered", cls=name, version=schema.version, by=caller.name)
        stored = StoredClass(schema, caller.name, at)
        return _info(stored, [*versions, stored],
                     "registered" if latest is None else "new version")

    async def describe(self, name: str) -> ClassInfo:
        """A class by name: awecore's own, or registered (then read from the table, and made
        here if this process did not know it yet)."""
        if name in registry and is_builtin(registry.get(name)):
            return ClassInfo(spec=schema_of(registry.get(name)), builtin=True)
        async with self.pool.acquire() as conn:
            versions = await ClassStore(conn).versions(name)
        if not versions:
            raise NotFound(f"no class {name!r}; GET /classes lists them, POST /classes "
                           "registers one")
        install([versions[-1].schema])
        return _info(versions[-1], versions)


def _problems(lines: list[str]) -> list[dict[str, str]]:
    return [{"field": line.split(":", 1)[0], "message": line} for line in lines]


async def follow_classes(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Keep this process's classes as the table says until ``stop``: listen for
    registrations (the payload is the schema: made at once), read the table on every
    (re)connection (what was registered while not listening)."""
    service = ClassService(pool)
    tasks: set[asyncio.Task[list[str]]] = set()

    def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            install([ClassSchema.model_validate_json(payload)])
        except ValidationError:  # a name only: the schema is in the table
            task = asyncio.get_running_loop().create_task(service.load())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def listening() -> None:
        await service.load()

    await pg.listen(pool, CHANNEL, "classes", stop, heard, listening)
