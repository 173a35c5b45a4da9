"""Raw-data ingest: header translators, splitting per chip, registration by content."""

from ._ingest import Checksum, Ingester, IngestReport, Store, expand
from ._plan import Part, RawExposure, check_complete, raw_name, read_exposure
from ._translate import (
    KIND_CLASSES,
    AweTranslator,
    DuplicateRawFile,
    HeaderTranslator,
    IncompleteExposure,
    IngestError,
    NameTaken,
    OmegaCamTranslator,
    WideCamTranslator,
    translator_for,
)

__all__ = ["KIND_CLASSES", "AweTranslator", "Checksum", "DuplicateRawFile", "HeaderTranslator",
           "IncompleteExposure", "IngestError", "IngestReport", "Ingester", "NameTaken",
           "OmegaCamTranslator", "Part", "RawExposure", "Store", "WideCamTranslator",
           "check_complete", "expand", "raw_name", "read_exposure", "translator_for"]
