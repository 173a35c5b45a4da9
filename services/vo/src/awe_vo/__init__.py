"""AWE's Virtual Observatory service: TAP with ADQL, Simple Cone Search, SIA v2, DataLink
and SODA cutouts over the catalog's own database, read-only, under the catalog's privilege
rule (``awecore.visibility``). It owns no data: the catalog stays the one truth."""
