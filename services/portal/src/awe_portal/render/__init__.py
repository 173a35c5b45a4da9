"""Pictures of the portal, as pure functions of the services' answers: preview PNGs of
products with pixels, the lineage graph, QC time series and the calibration timeline as
SVG. No I/O here except the preview cache's own directory, so each is unit-tested alone."""

from .graph import lineage_svg, node_label
from .preview import RENDER_VERSION, NoPixels, PreviewCache, find_image, render_preview
from .series import Point, object_href, series_svg
from .timeline import timeline_span, timeline_svg

__all__ = ["RENDER_VERSION", "NoPixels", "Point", "PreviewCache", "find_image", "lineage_svg",
           "node_label", "object_href", "render_preview", "series_svg", "timeline_span",
           "timeline_svg"]
