"""The canonical reference writer and the deterministic image builder.

    write_reference(archive, out, layout=..., keep_compression=..., epoch=...)
        the canonical archive of an image (the form is specified in `writer`)
    build_image(dirs, out, ...) / build_from_layers(sources, out, ...)
        a deterministic image from directories or layer-writing code
"""

from __future__ import annotations

from harness.reference.build import LayerSource, build_from_layers, build_image
from harness.reference.layertar import LayerWriter
from harness.reference.writer import LAYOUTS, Layout, write_reference

__all__ = ["LAYOUTS", "LayerSource", "LayerWriter", "Layout", "build_from_layers", "build_image", "write_reference"]
