"""Scenario presets (data files) and the plan of sequences they expand to.

A scenario is a TOML file (see ``synth/presets/synthia-al.toml``): classes, fps, the range of
sequence lengths, which classes each area / condition allows, and a list of subsets, each with
a split, a number of sequences, weights over areas and conditions, and per-class spawn
probabilities (thesis Table 2.1).

``plan_sequences`` turns a scenario, a scale and a seed into the exact list of sequences to
render. Scaling (``--scale S``) keeps the preset's proportions: a subset of N sequences gets
``n = max(1, round(N * sqrt(S)))`` sequences whose lengths are multiplied by ``S * N / n``, so
each subset's expected number of frames is exactly ``S`` times the full one (the number of
sequences and their lengths shrink together, and subsets too small to shrink in count shrink
in length instead). Areas and conditions are allotted to a subset's sequences in proportion to
their weights (largest remainder), then shuffled, so the proportions hold exactly, not only in
expectation.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

import numpy as np

AREAS = ("city", "town", "highway")
#: condition -> (season, daytime, weather): one condition changed at a time from the default
#: spring / day / clear (thesis 2.4).
CONDITIONS = {
    "spring": ("spring", "day", "clear"),
    "fall": ("fall", "day", "clear"),
    "winter": ("winter", "day", "clear"),
    "rain": ("spring", "day", "rain"),
    "night": ("spring", "night", "clear"),
}
KNOWN_CLASSES = ("pedestrian", "cyclist", "car", "wheelchair")
PRESET_DIR = Path(__file__).parent / "presets"

_TOP_KEYS = {"name", "description", "fps", "length_s", "classes", "allowed_classes", "subsets"}
_SUBSET_KEYS = {"name", "split", "sequences", "areas", "conditions", "spawn"}


class ScenarioError(ValueError):
    """A scenario file is malformed; the message names the file, the field and the fix."""


@dataclasses.dataclass(frozen=True)
class Subset:
    name: str
    split: str
    sequences: int
    areas: dict[str, float]
    conditions: dict[str, float]
    spawn: dict[str, float]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fps: float
    length_s: tuple[float, float]
    classes: tuple[str, ...]
    allowed_classes: dict[str, tuple[str, ...]]
    subsets: tuple[Subset, ...]
    source: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SequenceSpec:
    """One sequence to render: everything a worker needs, nothing else."""

    name: str
    split: str
    subset: str
    index: int
    area: str
    condition: str
    season: str
    daytime: str
    weather: str
    n_frames: int
    fps: float
    spawn: dict[str, float]  # effective per-class probability (area/condition rules applied)
    seed: int

    @property
    def attrs(self) -> dict:
        """Per-video HDF5 attributes (docs/format.md)."""
        return {"subset": self.subset, "area": self.area, "season": self.season,
                "daytime": self.daytime, "weather": self.weather, "condition": self.condition,
                "seed": self.seed}


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def resolve_preset(preset: str) -> Path:
    """A preset name (``synthia-al``) or a path to a scenario ``.toml`` file."""
    path = Path(preset)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {preset} does not exist")
        return path
    path = PRESET_DIR / f"{preset}.toml"
    if not path.is_file():
        raise ScenarioError(f"unknown preset {preset!r}; choose one of {', '.join(available_presets())} "
                            f"or give the path of a scenario .toml file")
    return path


def load_scenario(preset: str) -> Scenario:
    """Load and validate a scenario preset (name or path)."""
    path = resolve_preset(preset)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    scenario = _parse(raw, str(path))
    # provenance: the preset's name for built-in presets, the path as given otherwise
    return dataclasses.replace(scenario, source=preset if path.parent == PRESET_DIR else str(path))


def _fail(src: str, field: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{src}: field '{field}': {msg}")


def _check_keys(src: str, where: str, table: dict, allowed: set[str], required: set[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise _fail(src, where + sorted(unknown)[0],
                    f"unknown key; allowed keys are {', '.join(sorted(allowed))}")
    missing = required - set(table)
    if missing:
        raise _fail(src, where + sorted(missing)[0], "missing; add it")


def _weights(src: str, field: str, value, allowed: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise _fail(src, field, f"must be a non-empty table like {{ {allowed[0]} = 1 }}")
    out = {}
    for key, w in value.items():
        if key not in allowed:
            raise _fail(src, f"{field}.{key}", f"unknown name; use one of {', '.join(allowed)}")
        if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 or not math.isfinite(w):
            raise _fail(src, f"{field}.{key}", f"weight must be a number >= 0, got {w!r}")
        out[key] = float(w)
    if sum(out.values()) <= 0:
        raise _fail(src, field, "weights sum to 0; give at least one positive weight")
    return out


def _parse(raw: dict, src: str) -> Scenario:
    _check_keys(src, "", raw, _TOP_KEYS, {"name", "classes", "subsets"})
    classes = raw["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise _fail(src, "classes", "must be a non-empty list of class names")
    for c in classes:
        if c not in KNOWN_CLASSES:
            raise _fail(src, "classes", f"synth cannot render {c!r}; it renders {', '.join(KNOWN_CLASSES)}")
    fps = raw.get("fps", 25)
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0:
        raise _fail(src, "fps", f"must be a positive number, got {fps!r}")
    length = raw.get("length_s", [10.0, 30.0])
    if (not isinstance(length, list) or len(length) != 2
            or not all(isinstance(x, (int, float)) for x in length) or not 0 < length[0] <= length[1]):
        raise _fail(src, "length_s", f"must be [min, max] seconds with 0 < min <= max, got {length!r}")
    allowed = {}
    for key, names in raw.get("allowed_classes", {}).items():
        if key not in AREAS and key not in CONDITIONS:
            raise _fail(src, f"allowed_classes.{key}", f"not an area or condition; use one of "
                        f"{', '.join(AREAS + tuple(CONDITIONS))}")
        if not isinstance(names, list) or not all(n in classes for n in names):
            raise _fail(src, f"allowed_classes.{key}", f"must be a list of classes among {classes}")
        allowed[key] = tuple(names)
    subsets = raw["subsets"]
    if not isinstance(subsets, list) or not subsets:
        raise _fail(src, "subsets", "must be a non-empty list of [[subsets]] tables")
    parsed = []
    for i, s in enumerate(subsets):
        where = f"subsets[{i}]."
        if not isinstance(s, dict):
            raise _fail(src, f"subsets[{i}]", "must be a table")
        _check_keys(src, where, s, _SUBSET_KEYS, _SUBSET_KEYS)
        if not isinstance(s["name"], str) or not s["name"].replace("_", "").isalnum():
            raise _fail(src, where + "name", f"must be a word of letters, digits and _, got {s['name']!r}")
        if s["name"] in {p.name for p in parsed}:
            raise _fail(src, where + "name", f"duplicate subset name {s['name']!r}")
        if s["split"] not in ("train", "test"):
            raise _fail(src, where + "split", f"must be 'train' or 'test', got {s['split']!r}")
        n = s["sequences"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _fail(src, where + "sequences", f"must be an integer >= 1, got {n!r}")
        spawn = s["spawn"]
        if not isinstance(spawn, dict):
            raise _fail(src, where + "spawn", "must be a table of class = probability")
        for c, p in spawn.items():
            if c not in classes:
                raise _fail(src, f"{where}spawn.{c}", f"not a class of this scenario ({', '.join(classes)})")
            if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
                raise _fail(src, f"{where}spawn.{c}", f"probability must be in [0, 1], got {p!r}")
        parsed.append(Subset(
            name=s["name"], split=s["split"], sequences=n,
            areas=_weights(src, where + "areas", s["areas"], AREAS),
            conditions=_weights(src, where + "conditions", s["conditions"], tuple(CONDITIONS)),
            spawn={c: float(spawn.get(c, 0.0)) for c in classes}))
    return Scenario(name=str(raw["name"]), description=str(raw.get("description", "")),
                    fps=float(fps), length_s=(float(length[0]), float(length[1])),
                    classes=tuple(classes), allowed_classes=allowed, subsets=tuple(parsed),
                    source=src)


def allot(weights: dict[str, float], n: int) -> list[str]:
    """``n`` labels in proportion to ``weights`` (largest-remainder rounding), unshuffled."""
    names = list(weights)
    w = np.array([weights[k] for k in names], float)
    quota = w / w.sum() * n
    counts = np.floor(quota).astype(int)
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return [name for name, c in zip(names, counts) for _ in range(c)]


def scaled_counts(sequences: int, scale: float) -> tuple[int, float]:
    """(number of sequences, length factor) of a subset of ``sequences`` at ``scale``."""
    n = max(1, int(round(sequences * math.sqrt(scale))))
    return n, scale * sequences / n


def effective_spawn(scenario: Scenario, subset: Subset, area: str, condition: str) -> dict[str, float]:
    """Spawn probabilities after the area's and condition's allowed-class rules."""
    out = {}
    for c, p in subset.spawn.items():
        for key in (area, condition):
            if key in scenario.allowed_classes and c not in scenario.allowed_classes[key]:
                p = 0.0
        out[c] = p
    return out


def plan_sequences(scenario: Scenario, *, scale: float, seed: int) -> list[SequenceSpec]:
    """Every sequence of the scenario at ``scale``, deterministic in ``seed``."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"--scale must be a number > 0 (1 = full preset, 0.01 = 1 %), got {scale!r}")
    specs = []
    for si, subset in enumerate(scenario.subsets):
        rng = np.random.default_rng([seed, si, 0x5EC])
        n, factor = scaled_counts(subset.sequences, scale)
        areas = allot(subset.areas, n)
        conditions = allot(subset.conditions, n)
        rng.shuffle(areas)
        rng.shuffle(conditions)
        lo, hi = scenario.length_s
        seconds = rng.uniform(lo, hi, size=n) * factor
        seq_seeds = rng.integers(0, 2**31 - 1, size=n)
        for i in range(n):
            season, daytime, weather = CONDITIONS[conditions[i]]
            specs.append(SequenceSpec(
                name=f"{subset.name}_{i:04d}", split=subset.split, subset=subset.name, index=i,
                area=areas[i], condition=conditions[i], season=season, daytime=daytime,
                weather=weather, n_frames=max(2, int(round(seconds[i] * scenario.fps))),
                fps=scenario.fps, spawn=effective_spawn(scenario, subset, areas[i], conditions[i]),
                seed=int(seq_seeds[i])))
    return specs
