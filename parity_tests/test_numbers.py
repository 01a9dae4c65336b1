"""nnparity.numbers: the one number format and the one JSON convention of every tool and report."""

import json
import math

import numpy as np
import pandas as pd

from nnparity.numbers import json_default, jsonable, number, sci


def test_number_tidy_exponent_zero_infinities_and_missing():
    assert number(1.234e-7) == "1.2e-7"
    assert number(3.4) == "3.4"
    assert sci(2.5) == "2.5e0" and sci(3.14e-16) == "3.1e-16"
    assert number(0.0, ".3f") == "0" and sci(0) == "0"
    assert number(math.inf) == "inf" and number(-np.inf, ".1e") == "-inf"
    assert number(None) == "n/a" and number(np.nan) == "n/a" and number(pd.NA) == "n/a"
    assert number(np.nan, ".3f", nan="") == "" and number(float("nan"), ".3g", nan="nan") == "nan"
    assert number(np.float32(12.5), ".1f") == "12.5" and number(np.int64(7), ".0f") == "7"


def test_jsonable_missing_is_null_infinity_is_a_string():
    value = {"nan": np.nan, "inf": np.inf, "ninf": -math.inf, "na": pd.NA, "nat": pd.NaT, "none": None,
             "ints": np.array([1, 2], dtype=np.int64), "nested": [(np.float32(0.5), np.bool_(True))],
             3: "key made text", "scalar": np.array(2.0), "series": pd.Series([1.5, np.nan])}
    out = jsonable(value)
    assert out == {"nan": None, "inf": "inf", "ninf": "-inf", "na": None, "nat": None, "none": None,
                   "ints": [1, 2], "nested": [[0.5, True]], "3": "key made text", "scalar": 2.0,
                   "series": [1.5, None]}
    assert type(out["ints"][0]) is int and type(out["scalar"]) is float
    json.dumps(out, allow_nan=False)  # strict JSON: raises on NaN or infinity


def test_json_default_numpy_scalars_to_python_anything_else_to_text(tmp_path):
    assert json.dumps({"a": np.int64(3), "p": tmp_path}, default=json_default) == (
        '{"a": 3, "p": ' + json.dumps(str(tmp_path)) + "}")
