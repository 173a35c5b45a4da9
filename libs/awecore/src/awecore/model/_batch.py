"""Validation of a batch of objects in one pass (the catalogue's ``POST /objects/batch``).

:func:`validate_object` checks one :class:`ObjectIn` at a time: a model instance made per
object, its validators and the class's attribute model run from Python, some 50 µs an
object, which made it most of the cost of registering 10^5 objects. :func:`check_batch`
says the same of decoded JSON objects with one call of pydantic's validator (Rust) per
class present: each class has a TypedDict of everything :func:`validate_object` asks of its
objects (the record fields as ObjectIn constrains them, those of the class only, its
attribute model, its reference names, each one oid or a list as declared). The attributes
are checked as a TypedDict of the attribute model's fields: the same checks, but no model
instance per object, and no None to fill in (and dump again) for each attribute an object
leaves out.

It words no problem: whatever it cannot take as it stands (any error, an oid to bring to its
canonical form) makes it answer None, and the caller takes the exact path (ObjectIn, then
:func:`validate_object`), which finds and words every problem. So it accepts a part of what
that path accepts, and what it accepts comes out the same (the model tests compare both).
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
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
    """A class's TypedDict for its objects, and its attributes' list serializer."""

    def __init__(self, cls: type[DBObject]) -> None:
        spec: dict[str, Any] = {"type": Required[Literal[cls.__name__]],
                                "oid": NotRequired[_OID | None]}
        for name in (*_COMMON, *(n for n in _CLASS_FIELDS if n in cls.fields)):
            spec[name] = NotRequired[_declared(ObjectIn.model_fields[name])]
        if "software_version" in cls.fields:  # a processed class: its parameters
            spec["process_params"] = NotRequired[_declared(ObjectIn.model_fields["process_params"])]
        attributes: Any = _as_typed_dict(cls.attributes_model())
        spec["attributes"] = NotRequired[attributes]
        refs: dict[str, Any] = {
            name: NotRequired[Annotated[list[_OID], Field(max_length=MAX_REF_LIST)] if field.many
                              else _OID]
            for name, field in cls.ref_fields().items()}
        spec["refs"] = NotRequired[_typed_dict(f"{cls.__name__}BatchRefs", refs)]
        item: Any = _typed_dict(f"{cls.__name__}BatchItem", spec)
        self.items: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[item])
        self.attributes: TypeAdapter[list[dict[str, Any]]] = TypeAdapter(list[attributes])
        #: whether its objects may give a validity window (to bring to UTC and check)
        self.window = "timestamp_start" in cls.fields or "timestamp_end" in cls.fields


def _declared(field: FieldInfo) -> Any:
    """The type a model declares for a field, with its constraints."""
    annotation = field.annotation
    return Annotated[(annotation, *field.metadata)] if field.metadata else annotation


def _as_typed_dict(model: type[BaseModel]) -> Any:
    """A model's fields as a TypedDict, each optional, nested models too: it takes what the
    model takes (extra fields forbidden), but what it makes of an object holds only what
    the object gave, which the model's dump (``exclude_none``) leaves as it does."""
    fields = {name: NotRequired[_without_models(_declared(field))]
              for name, field in model.model_fields.items()}
    return _typed_dict(f"{model.__name__}Batch", fields)


def _without_models(annotation: Any) -> Any:
    """An annotation with each model in it (a union's member) made a TypedDict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _as_typed_dict(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return Union[tuple(_without_models(a) for a in get_args(annotation))]  # noqa: UP007
    return annotation


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
    defaults = _DEFAULTS
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
        attributes = checker.attributes.dump_python(
            [item.get("attributes", _NONE) for item in items], mode="json", exclude_none=True)
        window = checker.window
        for i, item, clean in zip(indexes, items, attributes, strict=True):
            record = {**defaults, **item}
            record["attributes"] = clean
            if "refs" not in item:
                record["refs"] = {}
            if window and ("timestamp_start" in item or "timestamp_end" in item) and not (
                    _valid_window(record)):
                return None
            out[i] = record
    return out


#: the attributes of an object that gives none (the serializer makes each its own dict)
_NONE: dict[str, Any] = {}


def _valid_window(record: dict[str, Any]) -> bool:
    """Validity times as ObjectIn keeps them (a naive time is UTC); False for a window that
    ends before it starts (the exact path words that)."""
    start, end = record["timestamp_start"], record["timestamp_end"]
    if start is not None and start.tzinfo is None:
        record["timestamp_start"] = start = start.replace(tzinfo=dt.UTC)
    if end is not None and end.tzinfo is None:
        record["timestamp_end"] = end = end.replace(tzinfo=dt.UTC)
    return not (start is not None and end is not None and end < start)
