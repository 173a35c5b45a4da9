"""The class registry: name -> class for every persistent class.

The catalog trusts only class names found here; references name their target class, and
find it here when a query walks them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from ..errors import InvalidObject

__all__ = ["Registry"]

M = TypeVar("M")


class Registry(Generic[M]):
    """Name -> class for every persistent class; the catalog trusts only names found here.

    ``awecore.model.registry`` is the one instance, made with ``DBObject`` (``_base``)."""

    def __init__(self) -> None:
        self._classes: dict[str, type[M]] = {}

    def add(self, cls: type[M]) -> None:
        if cls.__name__ in self._classes and self._classes[cls.__name__] is not cls:
            raise TypeError(f"class name {cls.__name__} declared twice")
        self._classes[cls.__name__] = cls

    def remove(self, name: str) -> type[M] | None:
        """Forget a class (a registered class replaced by its next version: ``_schema``)."""
        return self._classes.pop(name, None)

    def get(self, name: str) -> type[M]:
        try:
            return self._classes[name]
        except KeyError:
            raise InvalidObject(
                f"unknown class {name!r}; known classes: {', '.join(sorted(self._classes))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[type[M]]:
        return iter(self._classes.values())

    def names(self) -> list[str]:
        return sorted(self._classes)

    def subclass_names(self, cls: type[M]) -> list[str]:
        """Every registered class that is ``cls`` or derives from it (polymorphic queries)."""
        return sorted(name for name, c in self._classes.items() if issubclass(c, cls))
