"""Open a picture the project drew and say what it shows: the series its PNG lists, checked against its pixels.

`shown(png)` reads the `nemotron.series` text chunk (panel, label, colour, points) and asserts each
listed series is really drawn: pixels of its colour exist in the decoded image (more than a legend
sample has), so a picture that lists a series it did not draw fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

LEGEND_PIXELS = 150
"""More pixels of a series' colour than its legend sample has (60, 90 with a marker): the line is drawn."""


def colour_pixels(image, colour: str, least: float = 0.45, tolerance: float = 0.06) -> int:
    """Pixels of `image` (an imread RGB(A) float array) that are `colour` (`#rrggbb`) laid over white with
    an opacity of at least `least` (an antialiased line's edge pixels count; grey and other colours do not)."""
    import numpy as np

    rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    ink, paper = 1.0 - rgb, 1.0 - image[..., :3]  # how far from white the colour and each pixel are
    alpha = (paper * ink).sum(axis=-1) / (ink * ink).sum()  # the opacity that best explains the pixel
    residual = np.abs(paper - alpha[..., None] * ink).max(axis=-1)
    return int(((alpha >= least) & (residual < tolerance)).sum())


def shown(png: Path) -> Dict[str, List[Tuple[str, int]]]:
    """{panel: [(label, points), ...]} of the picture `png`, after checking it decodes and each series
    has pixels of its colour."""
    from matplotlib.image import imread
    from PIL import Image

    with Image.open(png) as image:
        listed = json.loads(image.text["nemotron.series"])
        size = image.size
    pixels = imread(png)
    assert pixels.shape[1] == size[0] and pixels.shape[0] == size[1] and min(size) >= 300, size
    panels: Dict[str, List[Tuple[str, int]]] = {}
    for series in listed:
        count = colour_pixels(pixels, series["color"])
        assert count > LEGEND_PIXELS, f"{png}: {series['label']} is listed but hardly drawn ({count} pixels)"
        panels.setdefault(series["panel"], []).append((series["label"], series["points"]))
    return panels
