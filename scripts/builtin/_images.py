"""Deterministic small PNGs for the bundled mini datasets: varied sizes, colours and shapes
so that a tiny random model answers differently for different items."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw


def make_png(path: Path, seed: int, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Write a PNG and return its (width, height). Same seed, same bytes."""
    rng = random.Random(seed)
    if size is None:
        size = (rng.choice([48, 56, 64, 80, 96]), rng.choice([40, 48, 64, 72]))
    bg = tuple(rng.randrange(256) for _ in range(3))
    im = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(2, 5)):
        x1, y1 = rng.randrange(size[0] - 8), rng.randrange(size[1] - 8)
        x2, y2 = rng.randint(x1 + 4, size[0]), rng.randint(y1 + 4, size[1])
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x1, y1, x2, y2], fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format="PNG", optimize=True)
    return size
