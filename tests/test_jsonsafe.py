"""vidal/jsonsafe.py: what every metrics / report file goes through."""

import json
import math

import numpy as np

from vidal.jsonsafe import json_safe


def test_numpy_nan_inf_keys_and_rounding():
    value = {1: np.float32(0.5), "a": [np.int64(3), math.nan, -math.inf], "b": np.array([[1.23456789, 2]]),
             "c": (np.bool_(True), "x")}
    out = json_safe(value, digits=3)
    assert out == {"1": 0.5, "a": [3, None, None], "b": [[1.235, 2.0]], "c": [True, "x"]}
    json.dumps(out, allow_nan=False)  # strictly valid JSON
    assert json_safe(1.23456789) == 1.23456789  # no rounding unless asked
