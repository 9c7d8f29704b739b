"""Scenario presets and the sequence plan (synth/scenario.py): Table 2.1 counts, scaling, exact
area / condition allotment, allowed-class rules, determinism and the errors of malformed files."""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from synth.scenario import (CONDITIONS, ScenarioError, available_presets, load_scenario, plan_sequences,
                            scaled_counts)
from synth.world import World

#: Thesis Table 2.1: subset -> (split, sequences).
TABLE_2_1 = {
    "default": ("train", 150),
    "town": ("train", 36),
    "night": ("train", 6),
    "wheelchair": ("train", 5),
    "test_no_wc": ("test", 85),
    "test_wc": ("test", 12),
}


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("synthia-al")


def _by_subset(specs):
    out = {}
    for s in specs:
        out.setdefault(s.subset, []).append(s)
    return out


# -- the preset ------------------------------------------------------------------------------


def test_preset_loads(scenario):
    assert "synthia-al" in available_presets()
    assert scenario.name == "synthia-al"
    assert scenario.classes == ("pedestrian", "cyclist", "car", "wheelchair")
    assert scenario.fps == 25.0
    assert scenario.length_s == (10.0, 30.0)
    assert scenario.allowed_classes == {"highway": ("car",), "night": ("car",)}
    # loading by path gives the same scenario
    assert load_scenario(scenario.source).subsets == scenario.subsets


def test_table_2_1_counts_and_splits_at_scale_1(scenario):
    assert {s.name: (s.split, s.sequences) for s in scenario.subsets} == TABLE_2_1
    specs = plan_sequences(scenario, scale=1.0, seed=0)
    got = {name: (ss[0].split, len(ss)) for name, ss in _by_subset(specs).items()}
    assert got == TABLE_2_1
    assert all(s.split == TABLE_2_1[s.subset][0] for s in specs)
    # names are unique and <subset>_<NNNN> with the index inside the subset
    assert len({s.name for s in specs}) == len(specs)
    for name, ss in _by_subset(specs).items():
        assert [s.name for s in ss] == [f"{name}_{i:04d}" for i in range(len(ss))]
        assert [s.index for s in ss] == list(range(len(ss)))
    # full-scale lengths lie in length_s (10..30 s at 25 fps)
    frames = np.array([s.n_frames for s in specs])
    assert frames.min() >= 10 * 25 and frames.max() <= 30 * 25


@pytest.mark.parametrize("scale", [0.0005, 0.001, 0.01, 0.1, 0.37, 1.0, 2.0])
def test_scaled_counts_keep_expected_frames(scale):
    for n_full in (5, 6, 12, 36, 85, 150):
        n, factor = scaled_counts(n_full, scale)
        assert n == max(1, round(n_full * math.sqrt(scale)))
        # expected frames = n * mean length * factor == scale * full expected frames
        assert n * factor == pytest.approx(scale * n_full, rel=1e-12)


@pytest.mark.parametrize("scale", [0.05, 0.3])
def test_plan_mean_lengths_match_scale_within_sampling_error(scenario, scale):
    """Each subset's frames, averaged over seeds, are ``scale`` times the full preset's expected
    frames (N * mean(length_s) * fps), within 4 standard errors of the uniform length draw."""
    seeds = range(40)
    lo, hi = scenario.length_s
    totals = {s.name: [] for s in scenario.subsets}
    for seed in seeds:
        for name, ss in _by_subset(plan_sequences(scenario, scale=scale, seed=seed)).items():
            totals[name].append(sum(s.n_frames for s in ss))
    for sub in scenario.subsets:
        n, factor = scaled_counts(sub.sequences, scale)
        expected = scale * sub.sequences * (lo + hi) / 2 * scenario.fps
        sd_one = (hi - lo) / math.sqrt(12) * factor * scenario.fps  # one sequence's length, frames
        se = sd_one * math.sqrt(n) / math.sqrt(len(seeds)) + 0.5 * n  # + rounding to whole frames
        mean = float(np.mean(totals[sub.name]))
        assert abs(mean - expected) <= 4 * se, (sub.name, mean, expected, se)


def _check_largest_remainder(weights: dict[str, float], counts: Counter, n: int, what: str):
    """``counts`` is a largest-remainder apportionment of ``n`` items to ``weights`` (exactly)."""
    assert set(counts) <= set(weights), what
    assert sum(counts.values()) == n, what
    total = sum(Fraction(w) for w in weights.values())
    quota = {k: Fraction(w) / total * n for k, w in weights.items()}
    for k in weights:
        assert counts.get(k, 0) in (math.floor(quota[k]), math.ceil(quota[k])), (what, k, counts, quota)
    # whoever was rounded up has a remainder at least as large as whoever was rounded down
    frac = {k: quota[k] - math.floor(quota[k]) for k in weights}
    up = [frac[k] for k in weights if frac[k] and counts.get(k, 0) == math.ceil(quota[k])]
    down = [frac[k] for k in weights if frac[k] and counts.get(k, 0) == math.floor(quota[k])]
    if up and down:
        assert min(up) >= max(down), (what, counts, quota)


@pytest.mark.parametrize("scale", [0.0005, 0.001, 0.004, 0.02, 0.3, 1.0])
def test_area_and_condition_allotment_is_exact(scenario, scale):
    specs = _by_subset(plan_sequences(scenario, scale=scale, seed=3))
    for sub in scenario.subsets:
        ss = specs[sub.name]
        n, _ = scaled_counts(sub.sequences, scale)
        assert len(ss) == n
        _check_largest_remainder(sub.areas, Counter(s.area for s in ss), n, f"{sub.name}.areas")
        _check_largest_remainder(sub.conditions, Counter(s.condition for s in ss), n, f"{sub.name}.conditions")


def test_allotment_at_full_scale_is_the_weights(scenario):
    specs = _by_subset(plan_sequences(scenario, scale=1.0, seed=0))
    # default: 150 sequences, areas city:highway 1:1, conditions spring:fall:winter:rain 2:1:1:1
    assert Counter(s.area for s in specs["default"]) == {"city": 75, "highway": 75}
    assert Counter(s.condition for s in specs["default"]) == {"spring": 60, "fall": 30, "winter": 30, "rain": 30}
    # test_no_wc: 85 over 3 areas (28.33 each) and 4 conditions (21.25 each)
    areas = Counter(s.area for s in specs["test_no_wc"])
    assert sorted(areas.values()) == [28, 28, 29]
    assert sorted(Counter(s.condition for s in specs["test_no_wc"]).values()) == [21, 21, 21, 22]
    assert {s.condition for s in specs["night"]} == {"night"}
    assert {s.area for s in specs["town"]} == {"town"}


def test_conditions_change_one_thing_from_spring_day_clear(scenario):
    for s in plan_sequences(scenario, scale=0.3, seed=5):
        assert (s.season, s.daytime, s.weather) == CONDITIONS[s.condition]
        changed = [s.season != "spring", s.daytime != "day", s.weather != "clear"]
        assert sum(changed) == (0 if s.condition == "spring" else 1)
        attrs = s.attrs
        assert attrs["subset"] == s.subset and attrs["condition"] == s.condition and attrs["seed"] == s.seed


def test_highway_and_night_spawn_only_cars(scenario):
    specs = plan_sequences(scenario, scale=1.0, seed=0)
    restricted = [s for s in specs if s.area == "highway" or s.condition == "night"]
    assert any(s.area == "highway" for s in restricted) and any(s.condition == "night" for s in restricted)
    subsets = {sub.name: sub for sub in scenario.subsets}
    for s in restricted:
        for c, p in s.spawn.items():
            if c != "car":
                assert p == 0.0, (s.name, c, p)
        assert s.spawn["car"] == subsets[s.subset].spawn["car"]
    # elsewhere the subset's probabilities are used as they are
    for s in specs:
        if s not in restricted:
            assert s.spawn == subsets[s.subset].spawn
    # and the worlds built from them hold no agent of another class
    checked = 0
    for s in restricted[::12]:
        world = World(s, np.random.default_rng(s.seed), scenario.classes)
        assert {a.cls for a in world.agents} <= {"car"}, s.name
        checked += len(world.agents)
    assert checked > 0


def test_plan_is_deterministic_in_seed(scenario):
    a = plan_sequences(scenario, scale=0.05, seed=11)
    b = plan_sequences(scenario, scale=0.05, seed=11)
    assert a == b
    c = plan_sequences(scenario, scale=0.05, seed=12)
    assert [s.seed for s in a] != [s.seed for s in c]
    assert [s.n_frames for s in a] != [s.n_frames for s in c]
    # video seeds differ from each other within a plan
    assert len({s.seed for s in a}) == len(a)


@pytest.mark.parametrize("scale", [0, 0.0, -1, -0.5, float("nan"), float("inf")])
def test_bad_scale_raises_value_error(scenario, scale):
    with pytest.raises(ValueError, match="scale"):
        plan_sequences(scenario, scale=scale, seed=0)


# -- malformed scenario files ----------------------------------------------------------------

GOOD = textwrap.dedent("""\
    name = "tiny"
    fps = 10
    length_s = [1.0, 2.0]
    classes = ["pedestrian", "car"]

    [allowed_classes]
    highway = ["car"]

    [[subsets]]
    name = "a"
    split = "train"
    sequences = 3
    areas = { city = 1, highway = 1 }
    conditions = { spring = 1 }
    spawn = { pedestrian = 0.5, car = 0.5 }
    """)


def _write(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_temp_scenario_loads(tmp_path):
    path = _write(tmp_path, GOOD)
    sc = load_scenario(str(path))
    assert sc.classes == ("pedestrian", "car")
    specs = plan_sequences(sc, scale=1.0, seed=0)
    assert len(specs) == 3 and all(10 <= s.n_frames <= 20 for s in specs)


@pytest.mark.parametrize("text, field", [
    (GOOD.replace('fps = 10', 'fps = 10\ncolour = "red"'), "colour"),                     # unknown top key
    (GOOD.replace('sequences = 3', 'sequences = 3\nweather = "rain"'), "subsets[0].weather"),  # unknown subset key
    (GOOD.replace("pedestrian = 0.5, car = 0.5", "pedestrian = 0.5, car = 1.5"), "subsets[0].spawn.car"),
    (GOOD.replace("pedestrian = 0.5, car = 0.5", "pedestrian = -0.1, car = 0.5"), "subsets[0].spawn.pedestrian"),
    (GOOD.replace("city = 1, highway = 1", "city = 1, suburb = 1"), "subsets[0].areas.suburb"),
    (GOOD.replace("conditions = { spring = 1 }", "conditions = { fog = 1 }"), "subsets[0].conditions.fog"),
    (GOOD.replace('classes = ["pedestrian", "car"]', 'classes = ["pedestrian", "car", "truck"]'), "classes"),
    (GOOD.replace("pedestrian = 0.5, car = 0.5", "pedestrian = 0.5, truck = 0.5"), "subsets[0].spawn.truck"),
    (GOOD.replace('highway = ["car"]', 'desert = ["car"]'), "allowed_classes.desert"),
    (GOOD.replace('split = "train"', 'split = "val"'), "subsets[0].split"),
    (GOOD.replace("sequences = 3", "sequences = 0"), "subsets[0].sequences"),
    (GOOD.replace("city = 1, highway = 1", "city = 0, highway = 0"), "subsets[0].areas"),
    (GOOD.split("[[subsets]]")[0], "subsets"),                                          # missing subsets
    (GOOD.replace('name = "a"\n', ""), "subsets[0].name"),                              # missing subset key
    (GOOD.replace("length_s = [1.0, 2.0]", "length_s = [2.0, 1.0]"), "length_s"),
])
def test_malformed_scenario_names_file_and_field(tmp_path, text, field):
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert f"'{field}'" in msg, msg
    assert "\n" not in msg


def test_bad_toml_syntax_names_file_and_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("sequences = 3", "sequences = = 3"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path))
    msg = str(info.value)
    assert str(path) in msg and "TOML" in msg
    assert "line 12" in msg, msg  # the offending line of the file


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(str(tmp_path / "nope.toml"))


def test_unknown_preset_lists_available():
    with pytest.raises(ScenarioError) as info:
        load_scenario("no-such-preset")
    msg = str(info.value)
    assert "no-such-preset" in msg
    for name in available_presets():
        assert name in msg


def test_boolean_spawn_probability_is_rejected(tmp_path):
    path = _write(tmp_path, GOOD.replace("pedestrian = 0.5, car = 0.5", "pedestrian = 0.5, car = true"))
    with pytest.raises(ScenarioError, match="spawn.car"):
        load_scenario(str(path))
