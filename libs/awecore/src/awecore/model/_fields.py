"""Field declarations of the object model.

A field is a descriptor: on the class it yields a query path (``Frame.chip.name == 'ccd53'``),
on an instance it yields the value (a reference resolves to the referenced object). One
declaration so serves the client's DSL, the catalog's validation and its SQL compiler.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from ._registry import Registry

__all__ = ["COLUMNS", "Field", "Ref", "Scalar", "Struct", "StructType"]

#: Fields stored as table columns (the rest lives in the JSON ``attributes``).
COLUMNS = frozenset(
    {
        "oid", "type", "site", "creation_date", "creator", "project", "privileges",
        "is_valid", "quality_flags", "timestamp_start", "timestamp_end", "filename",
        "file_size", "checksum", "software_version", "comments", "hlc",
    }
)

SCALAR_TYPES: dict[type, str] = {
    bool: "bool", int: "int", float: "float", str: "str", dt.datetime: "datetime",
}


class Field:
    """Base of all field declarations; ``name`` and ``owner`` are set by the metaclass."""

    kind: ClassVar[str] = "field"

    def __init__(self, doc: str = "") -> None:
        self.doc = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        """On the class (a DBObject or the source table), a query path; on an object, its
        value."""
        if obj is None:
            select = getattr(owner, "select", None)
            return self if select is None else select().path(self.name)
        return obj._get_field(self)

    def __set__(self, obj: Any, value: Any) -> None:
        obj._set_field(self, value)


class Scalar(Field):
    kind = "scalar"

    def __init__(self, type_: type, doc: str = "", unit: str | None = None) -> None:
        super().__init__(doc)
        if type_ not in SCALAR_TYPES:
            raise TypeError(f"unsupported scalar type {type_!r}")
        self.type = type_
        self.unit = unit

    @property
    def type_name(self) -> str:
        return SCALAR_TYPES[self.type]

    @property
    def is_column(self) -> bool:
        return self.name in COLUMNS


class StructType:
    """A fixed group of scalars kept inside an object (e.g. image statistics)."""

    fields: ClassVar[dict[str, Scalar]] = {}

    def __init_subclass__(cls) -> None:
        cls.fields = {}
        for name, value in list(vars(cls).items()):
            if isinstance(value, Scalar):
                value.name = name
                cls.fields[name] = value

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.fields)
        if unknown:
            raise AttributeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        self._values = {name: values.get(name) for name in self.fields}

    def __getattribute__(self, name: str) -> Any:
        fields = type(self).fields
        if name in fields:
            return object.__getattribute__(self, "_values")[name]
        return object.__getattribute__(self, name)

    def to_json(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"


class Struct(Field):
    kind = "struct"

    def __init__(self, struct: type[StructType], doc: str = "") -> None:
        super().__init__(doc)
        self.struct = struct


class Ref(Field):
    """A named reference to another object; references ARE the lineage."""

    kind = "ref"

    def __init__(self, target: str, doc: str = "", many: bool = False) -> None:
        super().__init__(doc)
        self.target_name = target
        self.many = many

    #: where a class name becomes the class: the model's registry, given by ``_base`` when it
    #: makes it (the fields are declared below the classes they refer to)
    classes: ClassVar[Registry[Any] | None] = None

    @property
    def target(self) -> type[Any]:
        """The class referred to (looked up by name: it may be declared after this field)."""
        if Ref.classes is None:
            raise RuntimeError("the model's registry is not made yet")
        return Ref.classes.get(self.target_name)
