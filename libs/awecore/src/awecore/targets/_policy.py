"""The QC policy of target processing: which flags of its inputs a product will not be made
from. One place, read by the planner (which leaves out or refuses what it can see already)
and the maker (which checks what was made in the same plan).

A product carries its own flags (``quality_flags``, what automatic QC found in it) and its
inputs' (``inherited_flags``: the union of their own and inherited flags), so a source list
made from a poor astrometric solution says so, and a person sees where the problem came from.
Flags inform; the policy below gates. Where a product is made from several inputs of a kind
(a night's zeropoint from every standard frame), a refused input is left out, and the
product is refused only when none is left.
"""

from __future__ import annotations

from ..model import ObjectOut
from ..pipelines import QC

__all__ = ["REFUSED", "describe", "flags_of", "refused_flags"]

#: class made -> flags of an input (own or inherited) that keep it from being made from it
REFUSED: dict[str, QC] = {
    # positions through a wrong WCS are worse than no source list
    "SourceList": QC.POOR_ASTROMETRY,
    # a standard frame whose stars cannot be placed cannot give a zeropoint
    "PhotometricParameters": QC.POOR_ASTROMETRY,
    # a tile's joint solution leaves out frames whose own solution failed
    "TileAstrometry": QC.POOR_ASTROMETRY,
}


def flags_of(record: ObjectOut) -> QC:
    """An object's own flags and those it inherited."""
    inherited = record.attributes.get("inherited_flags") or 0
    return QC(int(record.quality_flags) | int(inherited))


def refused_flags(cls: str, record: ObjectOut) -> QC:
    """The flags of ``record`` for which ``cls`` refuses it as an input (none: ``QC(0)``)."""
    return flags_of(record) & REFUSED.get(cls, QC(0))


def describe(flags: QC) -> str:
    return "|".join(f.name or str(int(f)) for f in QC if f in flags) or "none"
