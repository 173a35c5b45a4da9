"""Class schemas: the object model as data (what the catalog stores for a user's class), the
round trip class -> schema -> class, the rules of versions, and a plugin's recipe checks."""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from awecore.errors import InvalidObject
from awecore.model import (
    BiasFrame,
    ClassSchema,
    DataObject,
    DBObject,
    Field,
    FieldSchema,
    Frame,
    ObjectIn,
    ProcessTarget,
    Ref,
    check_schema,
    class_from_schema,
    is_builtin,
    registry,
    schema_of,
    validate_object,
)
from awecore.query import QuerySpec
from awecore.targets import RECIPES, Input, Made, Recipe, register_recipe
from awecore.targets._plugins import plugin_classes


@pytest.fixture
def name() -> Iterator[str]:
    """A fresh class name; the classes made under it are forgotten afterwards."""
    made = f"Probe{uuid.uuid4().hex[:8].upper()}"
    yield made
    for n in [n for n in registry.names() if n.startswith(made)]:
        registry.remove(n)
        RECIPES.pop(n, None)


def _schema(name: str, version: int = 1, **fields: FieldSchema) -> ClassSchema:
    own = {
        "chip": FieldSchema(kind="ref", target="Chip"),
        "reduced": FieldSchema(kind="ref", target="ReducedScienceFrame", doc="its input"),
        "level": FieldSchema(kind="scalar", type="float", unit="adu", doc="sky level"),
        "frames": FieldSchema(kind="ref", target="RawScienceFrame", many=True),
        "stats": FieldSchema(kind="struct", struct="BoxStats", fields={
            "median": FieldSchema(kind="scalar", type="float", unit="adu"),
            "n": FieldSchema(kind="scalar", type="int")}),
        **fields}
    return ClassSchema(name=name, bases=("DataObject", "ProcessTarget"), version=version,
                       doc="a probe", fields=own, dimensions=("instrument", "chip", "raw"))


def test_every_builtin_class_round_trips_through_json() -> None:
    own = [c for c in registry  # awecore's (not plugins', nor those made from schemas)
           if c is not DBObject and c.__module__.startswith("awecore.model._chain")]
    assert len(own) > 20
    for cls in own:
        schema = schema_of(cls)
        again = ClassSchema.model_validate_json(schema.model_dump_json())
        assert again == schema and again.same_as(schema), cls.__name__
        assert set(schema.fields) == {n for n, v in vars(cls).items()
                                      if isinstance(v, Field)}
        assert is_builtin(cls)
    bias = schema_of(BiasFrame)
    assert bias.bases == ("Frame", "CalFile", "ProcessTarget")
    assert bias.fields["raw_bias_frames"] == FieldSchema(kind="ref", target="RawBiasFrame",
                                                         many=True)
    assert schema_of(Frame).fields["imstat"].fields["stdev"].unit == "adu"  # type: ignore[index]


def test_a_schema_becomes_a_class_that_validates_and_queries(name: str) -> None:
    schema = _schema(name)
    cls = class_from_schema(schema)
    assert registry.get(name) is cls and not is_builtin(cls)
    assert schema_of(cls) == schema  # and back
    assert issubclass(cls, DataObject) and issubclass(cls, ProcessTarget)
    assert cls.fields["level"].unit == "adu" and cls.ref_fields()["frames"].many  # type: ignore[attr-defined]
    assert cls.dimensions == ("instrument", "chip", "raw")  # type: ignore[attr-defined]
    assert name in registry.subclass_names(DataObject)
    oid = str(uuid.UUID(int=1))
    _, attributes = validate_object(ObjectIn(
        type=name, filename="f.fits", software_version="1", process_params={"box": 16},
        attributes={"level": "12.5", "stats": {"median": 3, "n": 4}}, refs={"chip": oid}))
    assert attributes == {"level": 12.5, "stats": {"median": 3.0, "n": 4}}
    # unknown fields are refused as for awecore's classes, each named
    with pytest.raises(InvalidObject) as refused:
        validate_object(ObjectIn(type=name, attributes={"foo": 1}, refs={"bogus": oid}))
    assert "has no attribute 'foo'" in refused.value.detail
    assert "no reference 'bogus'" in refused.value.detail
    # the DSL: a query on the class, through its reference, as for any class
    q = (cls.level > 10) & (cls.reduced.raw.filter.name == "841")  # type: ignore[attr-defined]
    spec = QuerySpec.model_validate(q.spec().model_dump())
    assert spec.cls == name and "reduced" in spec.model_dump_json()


def test_the_same_schema_again_keeps_the_class(name: str) -> None:
    cls = class_from_schema(_schema(name))
    assert class_from_schema(_schema(name)) is cls
    docs = _schema(name).model_copy(update={"doc": "other words"})
    assert docs.same_as(_schema(name)) and class_from_schema(docs) is cls


def test_a_new_version_adds_fields_and_replaces_the_class(name: str) -> None:
    v1 = _schema(name)
    old = class_from_schema(v1)
    sub = class_from_schema(ClassSchema(name=name + "Sub", bases=(name,),
                                        fields={"x": FieldSchema(kind="scalar", type="int")}))
    v2 = _schema(name, 2, extra=FieldSchema(kind="scalar", type="str", doc="new, optional"))
    assert v2.changes_from(v1) == []
    new = class_from_schema(v2)
    assert new is not old and registry.get(name) is new and "extra" in new.fields
    # a registered subclass follows its base's new version (polymorphic queries find it)
    assert issubclass(registry.get(name + "Sub"), new) and registry.get(name + "Sub") is not sub
    assert name + "Sub" in registry.subclass_names(new)
    # objects of version 1 still validate under version 2
    validate_object(ObjectIn(type=name, attributes={"level": 1.0}))
    # a version never goes back
    assert class_from_schema(v1) is new


def test_what_a_new_version_may_not_change(name: str) -> None:
    v1 = _schema(name)
    retyped = _schema(name, 2, level=FieldSchema(kind="scalar", type="int", unit="adu"))
    assert retyped.changes_from(v1) == ["field level: int [adu] now, float [adu] before"]
    removed = v1.model_copy(update={"version": 2, "fields": {
        k: v for k, v in v1.fields.items() if k != "level"}})
    assert removed.changes_from(v1) == ["field level: only before"]
    rebased = v1.model_copy(update={"version": 2, "bases": ("DataObject",)})
    assert any(c.startswith("bases:") for c in rebased.changes_from(v1))
    assert retyped.differences(v1) == ["field level: int [adu] here, float [adu] there"]


def test_schemas_that_cannot_be_classes_say_why(name: str) -> None:
    def problems(**update: object) -> list[str]:
        return [p["message"] for p in check_schema(_schema(name).model_copy(update=update))]

    assert problems() == []
    assert problems(bases=("NoSuchClass",)) == ["unknown base class 'NoSuchClass'"]
    assert problems(bases=()) and "derive" in problems(bases=())[0]
    chip_again = {**_schema(name).fields, "date_obs": FieldSchema(kind="scalar", type="str")}
    assert sorted(problems(bases=("Frame",), fields=chip_again)) == [
        "chip is declared by Frame already", "date_obs is declared by Frame already"]
    file_field = {"filename": FieldSchema(kind="scalar", type="str")}
    assert "derive from DataObject" in problems(bases=("DBObject",), fields=file_field)[0]
    method = {"select": FieldSchema(kind="scalar", type="str")}
    assert "method" in problems(fields=method)[0]
    dangling = {"to": FieldSchema(kind="ref", target="NoSuchClass")}
    assert problems(fields=dangling) == ["to refers to unknown class 'NoSuchClass'"]
    assert "cannot be combined" in problems(bases=("DBObject", "DataObject"))[0]
    settings = {"schema_version": FieldSchema(kind="scalar", type="int")}
    assert "setting of a class" in problems(fields=settings)[0]
    for taken in ("BiasFrame", "Source"):
        with pytest.raises(InvalidObject, match="is a class of awecore itself"):
            class_from_schema(_schema(taken))
    with pytest.raises(InvalidObject, match="unknown base class"):
        class_from_schema(_schema(name).model_copy(update={"bases": ("NoSuchClass",)}))
    assert name not in registry  # nothing was made


@pytest.mark.parametrize("bad", [
    {"kind": "scalar"},  # no type
    {"kind": "scalar", "type": "complex"},
    {"kind": "ref"},  # no target
    {"kind": "ref", "target": "Chip", "unit": "m"},
    {"kind": "struct", "struct": "S", "fields": {"a": {"kind": "ref", "target": "Chip"}}},
])
def test_bad_fields_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FieldSchema.model_validate(bad)


@pytest.mark.parametrize("update", [{"name": "lowercase"}, {"name": "Has_Underscore"},
                                    {"fields": {"Bad": {"kind": "scalar", "type": "int"}}},
                                    {"fields": {"x'; drop": {"kind": "scalar", "type": "int"}}},
                                    {"bases": ["Frame", "Frame"]}, {"version": 0},
                                    {"dimensions": ["Chip"]}, {"extra": 1}])
def test_bad_schemas_are_refused(update: dict[str, object]) -> None:
    body = {"name": "Fine", "bases": ["DataObject"], "version": 1, **update}
    with pytest.raises(ValidationError):
        ClassSchema.model_validate(body)


def _made(*_: object) -> Made:
    return Made(None)


def test_a_plugin_recipe_is_checked_when_registered(name: str) -> None:
    cls = class_from_schema(_schema(name))
    recipe = Recipe(name, (Input("reduced", "ReducedScienceFrame"),), _made, needs_filter=True,
                    raw_path=("reduced", "raw"), params={"box": 16})
    with pytest.raises(ValueError, match="needs a reference filter"):
        register_recipe(name, recipe)  # the maker records the product's filter
    plain = Recipe(name, recipe.inputs, _made, raw_path=("reduced", "raw"), params={"box": 16})
    made = register_recipe(name, plain, version="2.1")
    assert RECIPES[name] is made and made.params == {"box": 16, "plugin_version": "2.1"}
    assert registry.get(name) is cls
    with pytest.raises(ValueError, match="awecore makes BiasFrame itself"):
        register_recipe("BiasFrame", Recipe("BiasFrame", (), _made))
    with pytest.raises(ValueError, match="no class NoSuchProduct"):
        register_recipe("NoSuchProduct", Recipe("NoSuchProduct", (), _made))
    with pytest.raises(ValueError, match="a class of awecore"):
        register_recipe("Filter", Recipe("Filter", (), _made))


def test_a_plugins_classes_come_after_what_they_build_on(name: str) -> None:
    module = f"fake_plugin_{name.lower()}"

    def declare(suffix: str, bases: tuple[type, ...], **fields: object) -> type:
        return types.new_class(name + suffix, bases, {},
                               lambda ns: ns.update({"__module__": module, **fields}))

    a = declare("A", (DataObject, ProcessTarget), b=Ref(name + "B"))
    declare("C", (a,))
    declare("B", (DataObject,))
    assert [c.__name__[len(name):] for c in plugin_classes(module)] == ["B", "A", "C"]


def test_the_example_plugin_declares_its_class_and_recipe() -> None:
    skyback = pytest.importorskip("awe_skyback")
    schema = schema_of(skyback.SkyBackgroundMap)
    assert schema.version == 1 and schema.bases == ("DataObject", "ProcessTarget")
    assert schema.dimensions == ("instrument", "chip", "filter", "night", "raw")
    assert schema.fields["reduced"].target == "ReducedScienceFrame"
    assert schema.fields["background"].unit == "adu"
    assert check_schema(schema) == []
    recipe = RECIPES["SkyBackgroundMap"]
    assert recipe.raw_path == ("reduced", "raw") and "plugin_version" in recipe.params
