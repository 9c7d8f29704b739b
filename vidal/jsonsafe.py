"""JSON-safe values for the files vidal writes (metrics, reports, run folders)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(value: Any, digits: int | None = None) -> Any:
    """``value`` with numpy arrays / scalars turned into Python ones, dict keys into strings,
    NaN and ±inf into ``None`` (JSON has neither), and floats rounded to ``digits`` if given."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), digits)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return value if digits is None else round(value, digits)
    return value
