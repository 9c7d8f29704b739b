"""Colours of the world under each condition (season, daytime, weather).

Colours are RGB uint8 triples. Night darkening is applied to the whole frame afterwards
(lights excepted), so night palettes are the day colours of spring with a dark sky.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass
class Palette:
    sky_top: tuple
    sky_bottom: tuple
    fog: tuple
    road: tuple
    marking: tuple
    sidewalk: tuple
    curb: tuple
    verge: tuple          # grass / soil beside the road
    canopy: list          # tree canopy colours to draw from (empty = bare trees)
    trunk: tuple
    roof: tuple | None    # None: roofs keep the house colour; a colour (snow) overrides
    ambient: float        # multiplies every surface colour (rain is dimmer than clear days)
    snow_ground: bool


def palette_for(season: str, daytime: str, weather: str) -> Palette:
    """The palette of one condition."""
    p = Palette(
        sky_top=(92, 140, 214), sky_bottom=(196, 218, 240), fog=(200, 214, 228),
        road=(88, 88, 92), marking=(236, 236, 228), sidewalk=(168, 164, 158),
        curb=(196, 192, 186), verge=(86, 140, 58),
        canopy=[(52, 118, 44), (70, 138, 52), (40, 96, 36), (88, 150, 60)], trunk=(92, 68, 48),
        roof=None, ambient=1.0, snow_ground=False)
    if season == "fall":
        p.verge = (138, 128, 64)
        p.canopy = [(196, 110, 36), (176, 64, 30), (214, 164, 52), (150, 96, 40)]
        p.sky_top, p.sky_bottom = (110, 140, 190), (214, 210, 200)
        p.fog = (210, 206, 196)
    elif season == "winter":
        p.verge = (232, 236, 242)
        p.sidewalk = (214, 218, 224)
        p.curb = (240, 242, 246)
        p.canopy = []
        p.roof = (236, 240, 246)
        p.sky_top, p.sky_bottom = (150, 166, 186), (222, 226, 232)
        p.fog = (224, 228, 234)
        p.road = (104, 104, 110)
        p.snow_ground = True
    if weather == "rain":
        p.sky_top, p.sky_bottom = (104, 110, 120), (158, 162, 168)
        p.fog = (150, 154, 160)
        p.road = (62, 64, 68)
        p.ambient = 0.78
    if daytime == "night":
        p.sky_top, p.sky_bottom = (6, 8, 22), (24, 28, 48)
        p.fog = (20, 22, 36)
    return p


def shade(color, factor: float) -> tuple:
    """``color`` scaled by ``factor`` (clipped to 0..255), as a tuple of ints for cv2."""
    return tuple(min(255, max(0, int(c * factor))) for c in color)


def fog_amount(distance: float, start: float, far: float) -> float:
    """How much of the fog colour replaces a surface's colour at ``distance`` (0..0.85)."""
    a = min(max((distance - start) / max(far - start, 1e-6), 0.0), 1.0)
    return a * math.sqrt(a) * 0.85


def mix(color, fog, a: float, ambient: float = 1.0) -> tuple:
    """``(1 - a) * ambient * color + a * fog`` as ints (the per-part hot path: plain floats)."""
    k = (1.0 - a) * ambient
    return (int(color[0] * k + fog[0] * a), int(color[1] * k + fog[1] * a), int(color[2] * k + fog[2] * a))


def sky_image(width: int, height: int, horizon: float, pal: Palette) -> np.ndarray:
    """Vertical sky gradient from ``sky_top`` to ``sky_bottom`` at the horizon: uint8 [H,W,3]."""
    rows = np.arange(height, dtype=float)
    t = np.clip(rows / max(horizon, 1.0), 0, 1)[:, None]
    col = np.asarray(pal.sky_top, float) * (1 - t) + np.asarray(pal.sky_bottom, float) * t
    return np.repeat(col[:, None, :], width, axis=1).astype(np.uint8)
