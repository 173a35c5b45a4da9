"""The AWE object model: one declaration shared by the client and every service."""

from ._base import CURATION_FIELDS, DBObject, Registry, registry, validate_object
from ._chain import *  # noqa: F403
from ._chain import __all__ as _chain_all
from ._fields import COLUMNS, Field, Ref, Scalar, Struct, StructType
from ._record import CurationUpdate, ObjectIn, ObjectOut

__all__ = [
    "COLUMNS",
    "CURATION_FIELDS",
    "CurationUpdate",
    "DBObject",
    "Field",
    "ObjectIn",
    "ObjectOut",
    "Ref",
    "Registry",
    "Scalar",
    "Struct",
    "StructType",
    "registry",
    "validate_object",
    *_chain_all,
]
