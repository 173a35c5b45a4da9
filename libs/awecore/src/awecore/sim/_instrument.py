"""Instruments the simulator can play: a laptop-sized default and OmegaCAM's geometry."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PRESETS", "FilterSpec", "InstrumentSpec"]


@dataclass(frozen=True)
class FilterSpec:
    name: str
    zeropoint: float  # magnitude giving 1 e-/s at airmass 0
    extinction: float  # mag per airmass
    sky_mag: float  # sky brightness, mag per arcsec^2


@dataclass(frozen=True)
class InstrumentSpec:
    name: str
    style: str  # header convention: "awe" or "omegacam"
    telescope: str
    chips_x: int
    chips_y: int
    nx: int
    ny: int
    pixel_scale: float  # arcsec per pixel
    gap: int = 20  # pixels between chips in the mosaic
    filters: tuple[FilterSpec, ...] = field(default_factory=tuple)

    @property
    def n_chips(self) -> int:
        return self.chips_x * self.chips_y

    def chip_name(self, i: int) -> str:
        """The detector id as the camera writes it."""
        return f"ESO_CCD_#{65 + i}" if self.style == "omegacam" else f"ccd{50 + i:02d}"

    def filter(self, name: str) -> FilterSpec:
        for f in self.filters:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no filter {name!r}; it has "
                       f"{[f.name for f in self.filters]}")


_WFI_FILTERS = (FilterSpec("841", 24.6, 0.12, 21.8), FilterSpec("842", 24.3, 0.08, 20.9))

PRESETS: dict[str, InstrumentSpec] = {
    "tiny": InstrumentSpec("AWECAM", "awe", "AWE-1m", 2, 1, 128, 256, 0.4, 8, _WFI_FILTERS),
    "small": InstrumentSpec("AWECAM", "awe", "AWE-1m", 4, 2, 512, 1024, 0.3, 16, _WFI_FILTERS),
    "omegacam": InstrumentSpec(
        "OMEGACAM", "omegacam", "ESO-VST", 8, 4, 2048, 4100, 0.214, 40,
        (FilterSpec("r_SDSS", 24.8, 0.10, 21.0), FilterSpec("i_SDSS", 24.4, 0.07, 20.3))),
}
