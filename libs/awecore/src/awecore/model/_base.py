"""The base classes of the object model and the class registry.

Classes are declared once here and used by the client (queries, attribute access), the
catalog (validation, SQL compilation) and every other service.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..dimensions import target_values
from ..errors import InvalidObject
from ..jobs import Ownership
from ..records import ObjectIn, ObjectOut
from ._fields import Field, Ref, Scalar, Struct, StructType
from ._query import Query
from ._registry import Registry
from ._session import targets

if TYPE_CHECKING:
    from ..lineage import Graph, Staleness

__all__ = ["DBObject", "Registry", "registry"]

_T = TypeVar("_T", bound="DBObject")

#: Fields that belong to the record, not to the class-specific ``attributes``.
_RECORD_FIELDS = frozenset(ObjectOut.model_fields) - {"attributes", "refs"}
#: Record fields that may change after creation.
CURATION_FIELDS = frozenset(
    {"is_valid", "timestamp_start", "timestamp_end", "privileges", "comments"})




#: Name -> class for every persistent class; references find their target class here.
registry: Registry[DBObject] = Registry()
Ref.classes = registry


class DBObject:
    """Every persistent object. Immutable once stored, but for the curation fields."""

    fields: ClassVar[dict[str, Field]] = {}
    _ref_fields: ClassVar[dict[str, Ref]] = {}
    abstract: ClassVar[bool] = True
    #: what an object of the class is *for*, as names of ``awecore.dimensions.DIMENSIONS``
    #: (instrument, chip, filter, night, raw, tile): its data ID's keys, as Rubin's Butler
    #: declares a dataset type's dimensions
    dimensions: ClassVar[tuple[str, ...]] = ()

    oid = Scalar(str, "UUIDv7, globally unique")
    type = Scalar(str, "class name")
    site = Scalar(str, "site where the object was made")
    creation_date = Scalar(dt.datetime, "when the object was made")
    creator = Scalar(str, "user who made it")
    project = Scalar(str, "project the object belongs to")
    privileges = Scalar(int, "1 me, 2 project, 3 this site, 4 every site, 5 the world (VO)")
    is_valid = Scalar(int, "QC verdict: 0 bad, 1 good, 2 proposed")
    quality_flags = Scalar(int, "bitmask of automatic QC findings")
    comments = Scalar(str, "free text, curation")
    hlc = Scalar(int, "hybrid logical clock of creation")

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.abstract = abstract
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[name] = value
        cls.fields = fields
        cls._ref_fields = {n: f for n, f in fields.items() if isinstance(f, Ref)}
        registry.add(cls)

    # -- instances -------------------------------------------------------------------
    def __init__(self, **values: Any) -> None:
        self._values: dict[str, Any] = {}
        self._refs: dict[str, str | list[str]] = {}
        self._resolved: dict[str, Any] = {}
        self._record: ObjectOut | None = None
        self._session: Any = None
        self._page: Sequence[DBObject] = (self,)
        self.process_params: dict[str, Any] | None = values.pop("process_params", None)
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                raise AttributeError(f"{type(self).__name__} has no field {name!r}")
            setattr(self, name, value)

    def _get_field(self, field: Field) -> Any:
        if isinstance(field, Ref):
            return self._resolve(field)
        if field.name in _RECORD_FIELDS and self._record is not None:
            return getattr(self._record, field.name)
        value = self._values.get(field.name)
        if isinstance(field, Struct) and isinstance(value, dict):
            value = field.struct(**value)
            self._values[field.name] = value
        elif isinstance(field, Scalar) and field.type is dt.datetime and isinstance(value, str):
            value = dt.datetime.fromisoformat(value)  # JSON on the wire, a time in Python
            self._values[field.name] = value
        return value

    def _set_field(self, field: Field, value: Any) -> None:
        if self._record is not None:
            raise AttributeError(
                f"{type(self).__name__} {self._record.oid} is stored and immutable; its "
                f"curation fields ({', '.join(sorted(CURATION_FIELDS))}) change through "
                f"awe.CatalogClient.curate, e.g. "
                f"awe.current().curate('{self._record.oid}', is_valid=0)"
            )
        if isinstance(field, Ref):
            if field.many:
                items = list(value or [])
                self._refs[field.name] = [_oid_of(v) for v in items]
                self._resolved[field.name] = [v for v in items if isinstance(v, DBObject)]
                if len(self._resolved[field.name]) != len(items):
                    del self._resolved[field.name]
            elif value is None:
                self._refs.pop(field.name, None)
            else:
                self._refs[field.name] = _oid_of(value)
                if isinstance(value, DBObject):
                    self._resolved[field.name] = value
        else:
            self._values[field.name] = value

    def _resolve(self, field: Ref) -> Any:
        if field.name in self._resolved:
            return self._resolved[field.name]
        if field.name not in self._refs:
            return [] if field.many else None
        if self._session is None:
            raise RuntimeError(
                f"reference {field.name!r} is not loaded and this object has no session; "
                "call awe.connect() first"
            )
        self._session.resolve_refs(self._page, field.name)
        return self._resolved[field.name]

    def to_record(self) -> ObjectIn:
        """The wire form of a new object (the catalog fills identity and provenance)."""
        record: dict[str, Any] = {"type": type(self).__name__, "attributes": {}, "refs": self._refs}
        for name, value in self._values.items():
            if isinstance(value, StructType):
                value = value.to_json()
            if name in _RECORD_FIELDS:
                record[name] = value
            else:
                record["attributes"][name] = _jsonable(value)
        record["process_params"] = self.process_params
        return ObjectIn.model_validate(record)

    @classmethod
    def from_record(cls, record: ObjectOut, session: Any = None) -> DBObject:
        klass = registry.get(record.type)
        obj = klass.__new__(klass)
        obj._values = dict(record.attributes)
        obj._refs = dict(record.refs)
        obj._resolved = {}
        obj._record = record
        obj._session = session
        obj._page = (obj,)
        obj.process_params = record.process_params
        return obj

    @property
    def record(self) -> ObjectOut | None:
        return self._record

    def __repr__(self) -> str:
        oid = self._record.oid if self._record else "unsaved"
        return f"<{type(self).__name__} {oid}>"

    def __eq__(self, other: object) -> bool:  # identity by oid, so sets and dicts work
        if not isinstance(other, DBObject) or self._record is None or other._record is None:
            return self is other
        return self._record.oid == other._record.oid

    def __hash__(self) -> int:
        return hash(self._record.oid) if self._record else id(self)

    # -- lineage ---------------------------------------------------------------------
    def _lineage(self) -> Any:
        if self._record is None:
            raise RuntimeError(f"{self!r} is not stored: it has no lineage yet")
        lineage = getattr(self._session, "lineage", None)
        if lineage is None:
            raise RuntimeError("no lineage service: set AWE_LINEAGE_URL (or `awe up`), "
                               "then awe.connect()")
        return lineage

    def upstream(self, depth: int | None = None, at: str | dt.datetime | None = None) -> Graph:
        """Where this object came from, down to the raw data (``at``: as it was then)."""
        return self._lineage().upstream(self._record.oid, depth, at)  # type: ignore[no-any-return,union-attr]

    def downstream(self, depth: int | None = None,
                   at: str | dt.datetime | None = None) -> Graph:
        """What was made from this object (``at``: what had been made by then)."""
        return self._lineage().downstream(self._record.oid, depth, at)  # type: ignore[no-any-return,union-attr]

    def why_stale(self) -> Staleness:
        """Whether this object is out of date, and why, input by input."""
        return self._lineage().staleness(self._record.oid)  # type: ignore[no-any-return,union-attr]

    # -- targets (the planner bound in _session) -------------------------------------
    # A target is given by its data ID: positionally as (date, chip, filter, raw), as the
    # planner has always taken it, or by dimension (night=, chip=, filter=, raw=).
    @classmethod
    def get(cls: builtins.type[_T], date: Any = None, chip: str | None = None,
            filter: str | None = None, raw: str | None = None,
            params: dict[str, Any] | None = None, *, privileges: int = 1,
            project: str | None = None, **data_id: Any) -> _T:
        """The best up-to-date object of this class for the data ID, made if needed. What
        is made is yours, in ``project`` (default: yours) and shared at ``privileges``
        (default 1: only you; 3 this site, 4 every site, 5 the world)."""
        date, chip, filter, raw, extra = _target(cls, date, chip, filter, raw, data_id)
        obj = targets().get(cls, date, chip, filter, raw, params, extra=extra,
                            owner=Ownership(privileges=privileges, project=project))
        assert isinstance(obj, cls)
        return obj

    @classmethod
    def plan(cls, date: Any = None, chip: str | None = None, filter: str | None = None,
             raw: str | None = None, params: dict[str, Any] | None = None,
             **data_id: Any) -> Any:
        """A dry run of get(): what would be used, what made, and why."""
        date, chip, filter, raw, extra = _target(cls, date, chip, filter, raw, data_id)
        return targets().plan(cls, date, chip, filter, raw, params, extra=extra)

    @classmethod
    def exists(cls, date: Any = None, chip: str | None = None, filter: str | None = None,
               raw: str | None = None, **data_id: Any) -> bool:
        """Whether a valid object of this target exists (up to date or not)."""
        date, chip, filter, raw, extra = _target(cls, date, chip, filter, raw, data_id)
        return targets().exists(cls, date, chip, filter, raw, extra=extra)

    @classmethod
    def make(cls: builtins.type[_T], date: Any = None, chip: str | None = None,
             filter: str | None = None, raw: str | None = None,
             params: dict[str, Any] | None = None, *, privileges: int = 1,
             project: str | None = None, **data_id: Any) -> _T:
        """Make the target anew, and whatever beneath it is missing or stale (yours, as
        with ``get``)."""
        date, chip, filter, raw, extra = _target(cls, date, chip, filter, raw, data_id)
        obj = targets().make(cls, date, chip, filter, raw, params, extra=extra,
                             owner=Ownership(privileges=privileges, project=project))
        assert isinstance(obj, cls)
        return obj

    def uptodate(self) -> Any:
        """Whether this object is still what get() would return; if not, the reasons
        (``bool(obj.uptodate())`` is the yes or no)."""
        return targets().uptodate(self)

    # -- queries ---------------------------------------------------------------------
    @classmethod
    def select(cls: builtins.type[_T]) -> Query[_T]:
        """Every visible object of this class and its subclasses."""
        return Query(cls)

    # -- validation (catalog side) ---------------------------------------------------
    @classmethod
    def ref_fields(cls) -> dict[str, Ref]:
        return cls._ref_fields

    @classmethod
    def attributes_model(cls) -> builtins.type[BaseModel]:
        cached: builtins.type[BaseModel] | None = cls.__dict__.get("_attributes_model")
        if cached is None:
            cached = _build_attributes_model(cls)
            setattr(cls, "_attributes_model", cached)  # noqa: B010 - per class, not inherited
        return cached


def _target(cls: type[DBObject], date: Any, chip: str | None, filter: str | None,
            raw: str | None, data_id: dict[str, Any]
            ) -> tuple[Any, str | None, str | None, str | None, dict[str, str]]:
    """A target's (night, chip, filter, raw, and dimensions beyond these: a tile) from
    positional values and a data ID (see ``awecore.dimensions.target_values``)."""
    return target_values(cls.__name__, cls.dimensions, date, chip, filter, raw, data_id)


def _oid_of(value: Any) -> str:
    if isinstance(value, DBObject):
        if value._record is None:
            raise ValueError(f"{value!r} must be saved before it is referenced")
        return value._record.oid
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _build_attributes_model(cls: type[DBObject]) -> type[BaseModel]:
    specs: dict[str, Any] = {}
    for name, field in cls.fields.items():
        if name in _RECORD_FIELDS:
            continue
        if isinstance(field, Scalar):
            specs[name] = (field.type | None, None)
        elif isinstance(field, Struct):
            sub: dict[str, Any] = {
                n: (f.type | None, None) for n, f in field.struct.fields.items()}
            struct_model = create_model(
                f"{cls.__name__}_{name}",
                __config__=ConfigDict(extra="forbid", strict=False),
                **sub,
            )
            specs[name] = (struct_model | None, None)
    model: type[BaseModel] = create_model(
        f"{cls.__name__}Attributes", __config__=ConfigDict(extra="forbid"), **specs
    )
    return model


def validate_object(obj: ObjectIn) -> tuple[type[DBObject], dict[str, Any]]:
    """Check an incoming object against its class; returns the class and clean attributes.

    Raises InvalidObject naming every problem, so a person can fix the input in one go.
    """
    cls = registry.get(obj.type)
    if cls.abstract:
        raise InvalidObject(f"class {obj.type} is abstract; create one of its subclasses")
    problems: list[dict[str, Any]] = []
    for name in ("timestamp_start", "timestamp_end", "filename", "file_size", "checksum",
                 "software_version"):
        if getattr(obj, name) is not None and name not in cls.fields:
            problems.append({"field": name, "message": f"{obj.type} has no field {name}"})
    if obj.process_params is not None and "software_version" not in cls.fields:
        problems.append({"field": "process_params", "message": f"{obj.type} is not processed"})
    refs = cls.ref_fields()
    for name, value in obj.refs.items():
        field = refs.get(name)
        if field is None:
            problems.append({
                "field": f"refs.{name}",
                "message": f"{obj.type} has no reference {name!r}; it has {sorted(refs)}",
            })
        elif field.many != isinstance(value, list):
            want = "a list of oids" if field.many else "one oid"
            problems.append({"field": f"refs.{name}", "message": f"expected {want}"})
    attributes: dict[str, Any] = {}
    try:
        clean = cls.attributes_model().model_validate(obj.attributes)
        attributes = clean.model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = f"{obj.type} has no attribute {loc!r}"
            problems.append({"field": f"attributes.{loc}", "message": msg})
    if obj.timestamp_start and obj.timestamp_end and obj.timestamp_end < obj.timestamp_start:
        problems.append({"field": "timestamp_end", "message": "validity ends before it starts"})
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidObject(f"invalid {obj.type}: {detail}", problems)
    return cls, attributes



def _register_root() -> None:
    DBObject.fields = {n: v for n, v in vars(DBObject).items() if isinstance(v, Field)}
    registry.add(DBObject)


_register_root()
