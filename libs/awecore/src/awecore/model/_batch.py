"""Validation of a batch of objects in one pass (the catalogue's ``POST /objects/batch``).

:func:`validate_object` checks one :class:`ObjectIn` at a time: a model instance made per
object, its validators and the class's attribute model run from Python, some 50 µs an
object, which made it most of the cost of registering 10^5 objects. :func:`check_batch`
says the same of decoded JSON objects with one call of pydantic's validator (Rust) per
class present: each class has a TypedDict of everything :func:`validate_object` asks of its
objects (the record fields as ObjectIn constrains them, those of the class only, its
attribute model, its reference names, each one oid or a list as declared).

It words no problem: whatever it cannot take as it stands (any error, an oid to bring to its
canonical form) makes it answer None, and the caller takes the exact path (ObjectIn, then
:func:`validate_object`), which finds and words every problem. So it accepts a part of what
that path accepts, and what it accepts comes out the same (the model tests compare both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ..records import _CANONICAL, MAX_REF_LIST, ObjectIn
from ._base import DBObject, registry

__all__ = ["check_batch"]

#: an oid in the form ``ObjectIn`` keeps as it is (any other form goes the exact path)
_OID = Annotated[str, StringConstraints(pattern=f"^{_CANONICAL.pattern}$")]
#: record fields an object may give only if its class has them (validate_object's list)
_CLASS_FIELDS = ("timestamp_start", "timestamp_end", "filename", "file_size", "checksum",
                 "software_version")
#: record fields every object may give, constrained as ObjectIn constrains them
_COMMON = ("project", "privileges", "is_valid", "quality_flags", "comments")
#: what an object that leaves a field out has, as ObjectIn fills it, in ObjectIn's order
#: (attributes and refs are set per object: each its own dict)
_DEFAULTS: dict[str, Any] = {name: None if f.default_factory else f.default
                             for name, f in ObjectIn.model_fields.items()}


class _Checker:
    """A class's TypedDict for its objects, and its attribute model's list serializer."""

    def __init__(self, cls: type[DBObject]) -> None:
        spec: dict[str, Any] = {"type": Required[Literal[cls.__name__]],
                                "oid": NotRequired[_OID | None]}
        for name in (*_COMMON, *(n for n in _CLASS_FIELDS if n in cls.fields)):
            spec[name] = NotRequired[_declared(name)]
        if "software_version" in cls.fields:  # a processed class: its parameters
            spec["process_params"] = NotRequired[_declared("process_params")]
        spec["attributes"] = NotRequired[cls.attributes_model()]
        refs: dict[str, Any] = {
            name: NotRequired[Annotated[list[_OID], Field(max_length=MAX_REF_LIST)] if field.many
                              else _OID]
            for name, field in cls.ref_fields().items()}
        spec["refs"] = NotRequired[_typed_dict(f"{cls.__name__}BatchRefs", refs)]
        item: Any = _typed_dict(f"{cls.__name__}BatchItem", spec)
        attributes: Any = cls.attributes_model()
        self.items: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[item])
        self.attributes: TypeAdapter[list[BaseModel]] = TypeAdapter(list[attributes])


def _declared(name: str) -> Any:
    """The type ObjectIn declares for a field, with its constraints."""
    field = ObjectIn.model_fields[name]
    annotation = field.annotation
    return Annotated[(annotation, *field.metadata)] if field.metadata else annotation


def _typed_dict(name: str, fields: dict[str, Any]) -> Any:
    made: Any = TypedDict(name, fields, total=False)  # type: ignore[misc]
    setattr(made, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010 - made at run time
    return made


def _checker(cls: type[DBObject]) -> _Checker:
    """Per class, not inherited (a class's next version is a new class: a new checker)."""
    made: _Checker | None = cls.__dict__.get("_batch_checker")
    if made is None:
        made = _Checker(cls)
        setattr(cls, "_batch_checker", made)  # noqa: B010 - per class, not inherited
    return made


def check_batch(objects: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The objects of a batch (decoded JSON) as ``validate_object`` leaves them: every field
    of ObjectIn, defaults filled in, the attributes clean; or None if any object must take
    the exact path (one that is not valid, or not in the form kept as it is)."""
    groups: dict[str, list[int]] = {}
    for i, item in enumerate(objects):
        if type(item) is not dict:
            return None
        name = item.get("type")
        if type(name) is not str:
            return None
        group = groups.get(name)
        if group is None:
            groups[name] = group = []
        group.append(i)
    out: list[dict[str, Any]] = [_DEFAULTS] * len(objects)
    for name, indexes in groups.items():
        if name not in registry:
            return None
        cls = registry.get(name)
        if cls.abstract:
            return None
        checker = _checker(cls)
        try:
            items = checker.items.validate_python([objects[i] for i in indexes])
        except ValidationError:
            return None
        empty = cls.attributes_model()()
        attributes = checker.attributes.dump_python(
            [item.get("attributes", empty) for item in items], mode="json", exclude_none=True)
        for i, item, clean in zip(indexes, items, attributes, strict=True):
            record = {**_DEFAULTS, **item}
            record["attributes"] = clean
            if "refs" not in item:
                record["refs"] = {}
            if ("timestamp_start" in item or "timestamp_end" in item) and not _valid_window(
                    record):
                return None
            out[i] = record
    return out


def _valid_window(record: dict[str, Any]) -> bool:
    """Validity times as ObjectIn keeps them (a naive time is UTC); False for a window that
    ends before it starts (the exact path words that)."""
    start, end = record["timestamp_start"], record["timestamp_end"]
    if start is not None and start.tzinfo is None:
        record["timestamp_start"] = start = start.replace(tzinfo=dt.UTC)
    if end is not None and end.tzinfo is None:
        record["timestamp_end"] = end = end.replace(tzinfo=dt.UTC)
    return not (start is not None and end is not None and end < start)
