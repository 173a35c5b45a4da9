"""Filters' passbands from their names, as cameras write them."""

from __future__ import annotations

import pytest

from awecore.ingest._passbands import passband


@pytest.mark.parametrize(("name", "centre"), [
    ("r_SDSS", 623.1), ("SDSS r'", 623.1), ("r'", 623.1), ("i", 762.5), ("z_SDSS", 913.4),
    ("g", 477.0), ("B", 445.0), ("V", 551.0), ("Rc", 658.0), ("Ic", 806.0),
    ("Johnson V", 551.0), ("I", 806.0)])
def test_known_names(name: str, centre: float) -> None:
    band = passband(name)
    assert band is not None and band[0] == centre and 50 < band[1] < 160


@pytest.mark.parametrize("name", ["841", "842", "NB656", "clear", "", "rr", "Halpha"])
def test_unknown_names_keep_no_wavelength(name: str) -> None:
    assert passband(name) is None
