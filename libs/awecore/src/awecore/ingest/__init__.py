"""Raw-data ingest: header translators, splitting per chip, registration."""

from ._ingest import Ingester, IngestReport, Store, expand
from ._plan import Part, RawExposure, read_exposure
from ._translate import (
    KIND_CLASSES,
    AweTranslator,
    HeaderTranslator,
    IngestError,
    OmegaCamTranslator,
    translator_for,
)

__all__ = ["KIND_CLASSES", "AweTranslator", "HeaderTranslator", "IngestError", "IngestReport",
           "Ingester", "OmegaCamTranslator", "Part", "RawExposure", "Store", "expand",
           "read_exposure", "translator_for"]
