"""The AWE object model: one declaration shared by the client and every service.

The classes (``_chain``), their fields (``_fields``), the Python side of the query language
(``_query``, ``_parse``: ``Class.attr == value`` builds a query) and what objects need from a
connection (``_session``: the client binds itself there, so the model never imports it).
"""

from ..records import CurationUpdate, ObjectIn, ObjectOut
from ._base import CURATION_FIELDS, DBObject, Registry, registry, validate_object
from ._batch import check_batch
from ._chain import *  # noqa: F403
from ._chain import __all__ as _chain_all
from ._columns import default_columns as default_columns
from ._fields import COLUMNS, Field, Ref, Scalar, Struct, StructType
from ._parse import add_query_root, parse_query
from ._query import Path, Query, Selectable, resolve_path
from ._schema import (
    CLASS_NAME,
    ClassInfo,
    ClassSchema,
    FieldSchema,
    builtin_name,
    check_schema,
    class_from_schema,
    is_builtin,
    schema_of,
)
from ._session import Session as Session
from ._session import Targets as Targets
from ._session import bind as bind
from ._session import session as session
from ._session import targets as targets
from ._table import to_table

# default_columns (what a listing shows first) is imported by name by the CLI and the portal.
# bind, session, targets, Session and Targets are the model's wiring, imported by name where
# needed (`from awecore.model import session`), never star-exported: `awecore.targets` is the
# planner's package.
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
    "check_batch",
    "Path", "Query", "Selectable", "add_query_root", "parse_query", "resolve_path", "to_table",
    "CLASS_NAME", "ClassInfo", "ClassSchema", "FieldSchema", "builtin_name", "check_schema",
    "class_from_schema", "is_builtin", "schema_of",
    *_chain_all,
]
