"""Schemas of classes: the object model as data, so the catalogue can hold classes whose
Python code it does not have.

A user's package declares a product class in Python as awecore declares its own
(``class SkyBackgroundMap(DataObject, ProcessTarget): ...``). :func:`schema_of` turns it into
a :class:`ClassSchema` (name, bases, version, fields with their kinds, types, units and docs,
references with their target class and whether they are lists, dimensions), which travels to
the catalog (``POST /classes``), is stored there, and becomes a class again with
:func:`class_from_schema`: a DBObject subclass made at run time and registered, so that objects
of it validate and queries on it compile as for any class of awecore.

Versions: a class changes only by a new version that adds fields. Every attribute of an AWE
object is optional (the catalogue validates ``type | None``), so an added field is an optional
one, and what was stored under an older version still validates under the newer; a field
removed or changed would make stored objects lie. :meth:`ClassSchema.changes_from` names what
a newer version changes that it may not.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import types
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as Spec

from ..errors import InvalidObject
from ..records import ObjectOut
from ._base import DBObject, registry
from ._fields import SCALAR_TYPES, Field, Ref, Scalar, Struct, StructType

__all__ = ["CLASS_NAME", "FIELD_NAME", "ClassInfo", "ClassSchema", "FieldSchema",
           "builtin_name", "check_schema", "class_from_schema", "is_builtin", "schema_of"]

#: a class name: CamelCase letters and digits
CLASS_NAME = r"^[A-Z][A-Za-z0-9]{0,63}$"
#: a field or dimension name: what the catalog's SQL compiler accepts as an attribute name
FIELD_NAME = r"^[a-z][a-z0-9_]{0,62}$"
MAX_FIELDS = 200
ScalarType = Literal["bool", "int", "float", "str", "datetime"]
_PY_TYPES: dict[str, type] = {name: t for t, name in SCALAR_TYPES.items()}
#: set on a class made from a schema: the schema itself (absent on classes written in Python)
_SCHEMA_ATTR = "__awe_schema__"
#: what a registered class may not call a field of its own: the record's columns (they come
#: with the bases that have them: files with DataObject, validity with CalFile, software with
#: ProcessTarget)
_RESERVED = frozenset(ObjectOut.model_fields)
#: what a class says of itself beside its fields (see schema_of)
_SETTINGS = frozenset({"schema_version", "dimensions"})
#: names awecore gives to what is not a class of the registry (the source table's rows)
_OTHER_NAMES = frozenset({"Source"})


class FieldSchema(BaseModel):
    """One field: a scalar (type, unit), a reference (target class, one or a list) or a
    struct (a named group of scalars, like a frame's image statistics)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["scalar", "ref", "struct"]
    doc: str = Spec(default="", max_length=2000)
    type: ScalarType | None = Spec(default=None, description="scalar: its type")
    unit: str | None = Spec(default=None, max_length=40, description="scalar: its unit")
    target: str | None = Spec(default=None, pattern=CLASS_NAME,
                              description="ref: the class referred to (or a subclass of it)")
    many: bool = Spec(default=False, description="ref: a list of references")
    struct: str | None = Spec(default=None, pattern=CLASS_NAME,
                              description="struct: the name of its type")
    fields: dict[str, FieldSchema] | None = Spec(default=None,
                                                 description="struct: its scalars")

    @model_validator(mode="after")
    def _consistent(self) -> FieldSchema:
        given = {k for k in ("type", "unit", "target", "struct", "fields")
                 if getattr(self, k) is not None} | ({"many"} if self.many else set())
        allowed = {"scalar": {"type", "unit"}, "ref": {"target", "many"},
                   "struct": {"struct", "fields"}}[self.kind]
        if given - allowed:
            raise ValueError(f"a {self.kind} field has no {', '.join(sorted(given - allowed))}")
        if self.kind == "scalar" and self.type is None:
            raise ValueError("a scalar field needs a type: bool, int, float, str or datetime")
        if self.kind == "ref" and self.target is None:
            raise ValueError("a ref field needs its target class")
        if self.kind == "struct":
            if self.struct is None or not self.fields:
                raise ValueError("a struct field needs its type's name (struct) and its "
                                 "scalars (fields)")
            for name, sub in self.fields.items():
                _check_name(name, FIELD_NAME, "struct field")
                if sub.kind != "scalar":
                    raise ValueError(f"struct field {name!r} must be a scalar")
        return self

    def shape(self) -> dict[str, Any]:
        """What makes two fields the same: everything but the docs."""
        out = self.model_dump(mode="json", exclude={"doc", "fields"})
        if self.fields is not None:
            out["fields"] = {n: f.shape() for n, f in self.fields.items()}
        return out


class ClassSchema(BaseModel):
    """A class of the object model as data. ``fields`` are its own (what the bases declare
    comes with them); ``bases`` are one or more classes of the model, as awecore's own
    classes use several (``BiasFrame(Frame, CalFile, ProcessTarget)``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Spec(pattern=CLASS_NAME)
    bases: tuple[str, ...] = Spec(max_length=8, description="classes it derives from, e.g. "
                                  "['DataObject', 'ProcessTarget'] for a made product with "
                                  "a file")
    version: int = Spec(default=1, ge=1, le=1_000_000)
    abstract: bool = False
    doc: str = Spec(default="", max_length=10_000)
    fields: dict[str, FieldSchema] = Spec(default_factory=dict)
    dimensions: tuple[str, ...] | None = Spec(
        default=None, max_length=16, description="the data ID of a product, if the class "
        "declares it (instrument, chip, filter, night, raw, ...)")

    @model_validator(mode="after")
    def _names(self) -> ClassSchema:
        for base in self.bases:
            _check_name(base, CLASS_NAME, "base class")
        if len(set(self.bases)) != len(self.bases):
            raise ValueError("a base class is named twice")
        if len(self.fields) > MAX_FIELDS:
            raise ValueError(f"{len(self.fields)} fields; at most {MAX_FIELDS}")
        for name in self.fields:
            _check_name(name, FIELD_NAME, "field")
        for name in self.dimensions or ():
            _check_name(name, FIELD_NAME, "dimension")
        return self

    def shape(self) -> dict[str, Any]:
        """What makes two schemas the same class and version: everything but the docs."""
        out = self.model_dump(mode="json", exclude={"doc", "fields"})
        out["fields"] = {n: f.shape() for n, f in self.fields.items()}
        return out

    def same_as(self, other: ClassSchema) -> bool:
        return self.shape() == other.shape()

    def differences(self, other: ClassSchema) -> list[str]:
        """How this schema differs from ``other`` (docs aside), in words."""
        out = [f"{key}: {getattr(self, key)!r} here, {getattr(other, key)!r} there"
               for key in ("bases", "abstract", "dimensions") if getattr(self, key)
               != getattr(other, key)]
        for name in sorted(set(self.fields) | set(other.fields)):
            mine, theirs = self.fields.get(name), other.fields.get(name)
            if theirs is None:
                out.append(f"field {name}: only here")
            elif mine is None:
                out.append(f"field {name}: only there")
            elif mine.shape() != theirs.shape():
                out.append(f"field {name}: {_words(mine)} here, {_words(theirs)} there")
        return out

    def changes_from(self, older: ClassSchema) -> list[str]:
        """What this version changes of ``older`` that a new version may not: anything but
        fields added."""
        return [d.replace(" here,", " now,").replace(" there", " before")
                for d in self.differences(older) if not d.endswith(": only here")]


class ClassInfo(BaseModel):
    """A class as the catalog knows it: its schema, whether awecore declares it itself, and
    for a registered class its versions, who registered this one and when, and what a
    registration did (``registered``, ``new version``, ``unchanged``, ``superseded``: the
    version sent is an older one, kept as it was)."""

    spec: ClassSchema
    builtin: bool = False
    versions: list[int] = Spec(default_factory=list)
    registered_by: str | None = None
    registered_at: dt.datetime | None = None
    outcome: Literal["registered", "new version", "unchanged", "superseded"] | None = None


def _check_name(name: str, pattern: str, what: str) -> None:
    if not re.match(pattern, name):
        raise ValueError(f"{what} name {name!r} must match {pattern}")


def _words(f: FieldSchema) -> str:
    if f.kind == "scalar":
        return f"{f.type}" + (f" [{f.unit}]" if f.unit else "")
    if f.kind == "ref":
        return f"ref to {'many ' if f.many else ''}{f.target}"
    return f"struct {f.struct}({', '.join(f.fields or {})})"


# -- Python class -> schema -----------------------------------------------------------------
def _field_schema(field: Field) -> FieldSchema:
    if isinstance(field, Scalar):
        return FieldSchema(kind="scalar", doc=field.doc, type=field.type_name,
                           unit=field.unit)
    if isinstance(field, Ref):
        return FieldSchema(kind="ref", doc=field.doc, target=field.target_name, many=field.many)
    if isinstance(field, Struct):
        return FieldSchema(kind="struct", doc=field.doc, struct=field.struct.__name__,
                           fields={n: _field_schema(s) for n, s in field.struct.fields.items()})
    raise TypeError(f"unknown kind of field {field!r}")


def schema_of(cls: type[DBObject]) -> ClassSchema:
    """The schema of a class of the model: its own fields, its bases by name, its version
    (``schema_version`` on the class, 1 if it says none) and dimensions (``dimensions`` on the
    class, if it declares them)."""
    stored: ClassSchema | None = cls.__dict__.get(_SCHEMA_ATTR)
    if stored is not None:
        return stored
    bases = []
    for base in cls.__bases__:
        if not (isinstance(base, type) and issubclass(base, DBObject)
                and registry_has(base)):
            raise TypeError(f"{cls.__name__} derives from {base.__name__}, which is not a "
                            "class of the object model: derive from DBObject or its subclasses")
        bases.append(base.__name__)
    dimensions = cls.__dict__.get("dimensions")
    return ClassSchema(
        name=cls.__name__, bases=tuple(bases), version=int(cls.__dict__.get("schema_version", 1)),
        abstract=bool(cls.abstract), doc=inspect.cleandoc(cls.__dict__.get("__doc__") or ""),
        fields={n: _field_schema(v) for n, v in vars(cls).items() if isinstance(v, Field)},
        dimensions=tuple(str(d) for d in dimensions) if isinstance(dimensions, tuple | list)
        else None)


def registry_has(cls: type[DBObject]) -> bool:
    return cls.__name__ in registry and registry.get(cls.__name__) is cls


def builtin_name(name: str) -> bool:
    """Whether awecore itself uses the name (for one of its classes, or the source table)."""
    return name in _OTHER_NAMES or (name in registry and is_builtin(registry.get(name)))


def is_builtin(cls: type[DBObject]) -> bool:
    """Whether awecore itself declares the class (its name cannot be registered)."""
    module = cls.__module__
    return (module == "awecore" or module.startswith("awecore.")) \
        and _SCHEMA_ATTR not in cls.__dict__


# -- checks -----------------------------------------------------------------------------
def check_schema(schema: ClassSchema, targets: bool = True) -> list[dict[str, str]]:
    """What keeps a schema from becoming a class beside those registered now, as problems
    (``field``, ``message``), every one at once. With ``targets`` a reference must name a
    class known here (or the class itself)."""
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    bases: list[type[DBObject]] = []
    if not schema.bases:
        problem("bases", "name the classes it derives from: DBObject or classes of the model, "
                "e.g. ['DataObject', 'ProcessTarget'] for a made product with a file")
    for base_name in schema.bases:
        if base_name == schema.name:
            problem("bases", f"{schema.name} cannot derive from itself")
        elif base_name not in registry:
            problem("bases", f"unknown base class {base_name!r}")
        else:
            bases.append(registry.get(base_name))
    declared: dict[str, str] = {}  # field -> the base class that declares it
    for base in bases:
        for klass in base.__mro__:
            for name, value in vars(klass).items():
                if isinstance(value, Field):
                    declared.setdefault(name, klass.__name__)
    for name, f in schema.fields.items():
        where = f"fields.{name}"
        if name in declared:
            problem(where, f"{name} is declared by {declared[name]} already")
        elif name in _RESERVED:
            problem(where, f"{name} belongs to every object's record, not to a class; "
                    "derive from DataObject (a file), CalFile (validity) or ProcessTarget "
                    "(software, parameters) to have it")
        elif name in _SETTINGS:
            problem(where, f"{name} is a setting of a class (schema_version, dimensions), "
                    "not a field")
        elif any(name in vars(klass) for base in bases for klass in base.__mro__):
            problem(where, f"{name} is a method or setting of the model's classes")
        if (targets and f.kind == "ref" and f.target != schema.name
                and f.target not in registry):
            problem(where, f"{name} refers to unknown class {f.target!r}")
    if not problems and bases:
        problems.extend(_mro_problems(bases))
    return problems


def _mro_problems(bases: list[type[DBObject]]) -> list[dict[str, str]]:
    """Whether the bases can be combined in this order (Python's method resolution order):
    tried on a probe class, forgotten at once."""
    probe = "_AweBasesProbe"  # never a class name (CLASS_NAME starts with a capital)
    try:
        types.new_class(probe, tuple(bases), {"abstract": True})
    except TypeError as exc:
        return [{"field": "bases", "message": f"these bases cannot be combined in this "
                 f"order: {exc}"}]
    finally:
        registry.remove(probe)
    return []


# -- schema -> class --------------------------------------------------------------------
def _field(schema: FieldSchema) -> Field:
    if schema.kind == "scalar":
        assert schema.type is not None
        return Scalar(_PY_TYPES[schema.type], schema.doc, schema.unit)
    if schema.kind == "ref":
        assert schema.target is not None
        return Ref(schema.target, schema.doc, schema.many)
    assert schema.struct is not None and schema.fields is not None
    struct = types.new_class(schema.struct, (StructType,), {}, lambda ns: ns.update(
        {n: _field(f) for n, f in (schema.fields or {}).items()}))
    return Struct(struct, schema.doc)


def _build(schema: ClassSchema) -> type[DBObject]:
    """Make the class and register it in place of one of that name (the older version)."""
    bases = tuple(registry.get(b) for b in schema.bases)

    def fill(ns: dict[str, Any]) -> None:
        ns.update({n: _field(f) for n, f in schema.fields.items()})
        ns.update({"__doc__": schema.doc or None, "__module__": __name__,
                   "schema_version": schema.version, _SCHEMA_ATTR: schema})
        if schema.dimensions is not None:
            ns["dimensions"] = schema.dimensions

    old = registry.remove(schema.name)
    try:
        cls: type[DBObject] = types.new_class(schema.name, bases, {"abstract": schema.abstract},
                                              fill)
    except Exception:
        if old is not None:
            registry.add(old)
        raise
    if old is not None:  # registered classes derived from the old version follow it
        for sub in [c for c in registry if old in c.__bases__ and _SCHEMA_ATTR in c.__dict__]:
            _build(schema_of(sub))
    return cls


def class_from_schema(schema: ClassSchema, targets: bool = False) -> type[DBObject]:
    """The class a schema describes, made and registered (objects of it validate, queries on
    it compile). A class of that name registered already is kept when it is this schema, or
    a newer version (a version never goes back), or written in Python in this process (the
    code that makes its objects wins); an older registered version is replaced. A name of
    awecore's own classes, or a schema that cannot be a class here, is an InvalidObject."""
    if builtin_name(schema.name):
        raise InvalidObject(f"{schema.name} is a class of awecore itself; give yours "
                            "another name")
    existing = registry.get(schema.name) if schema.name in registry else None
    if existing is not None:
        current = schema_of(existing)
        if (current.version > schema.version or current.same_as(schema)
                or _SCHEMA_ATTR not in existing.__dict__):
            return existing
    problems = check_schema(schema, targets)
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidObject(f"class {schema.name} cannot be made: {detail}", problems)
    return _build(schema)
