"""The AL loop's selections and metrics pinned for every registered acquisition (issue 13,
"behaviour unchanged"), on any machine: the detector is the scripted test double of
tests/double_detector.py (ground truth with seeded noise, no training), so nothing depends on
floating-point training.

The fixture ``tests/fixtures/loop_pinned.json`` holds, per acquisition, the candidates, scores,
selected frames and their real FP / FN of every cycle, the metrics rows (timings left out), every
``eval.json`` and ``reference.json``. Selections must match exactly, numbers to 1e-9. After a
deliberate change of the loop's behaviour, regenerate it with
``VIDAL_REGEN_FIXTURES=1 python -m pytest tests/test_loop_pinned.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import vidal.acquisition  # noqa: F401 - registers the acquisitions
from double_detector import registered
from tiny_videos import write_split
from vidal.config import load_config
from vidal.loop import Experiment
from vidal.registry import ACQUISITIONS

FIXTURE = Path(__file__).parent / "fixtures" / "loop_pinned.json"
TRAIN_LENGTHS = [6, 10, 14, 12]
TEST_LENGTHS = [6, 6, 8]
SEED = 3
#: Pinned runs of the batch selectors (issue 17), next to one run per registered acquisition
SELECTOR_RUNS = {
    "entropy+kcenter": {"name": "entropy", "selector": {"name": "kcenter"}},
    "random_r+kmeanspp": {"name": "random_r", "selector": {"name": "kmeanspp"}},
    "entropy+hybrid": {"name": "entropy", "selector": {"name": "hybrid", "m": 2, "diversity": "kcenter"}},
    "margin+boxes": {"name": "margin", "al": {"budget_unit": "boxes", "budget": 5}},
    "entropy+class_balanced": {"name": "entropy", "selector": {"name": "class_balanced", "lam": 1.0}},
    "entropy+class_balanced+boxes": {"name": "entropy", "selector": {"name": "class_balanced"},
                                     "al": {"budget_unit": "boxes", "budget": 5}},
}


@pytest.fixture(scope="module", autouse=True)
def _double_backend():
    """The "double" detector backend, for this module's tests only."""
    with registered():
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pinned")
    write_split(root / "train.h5", TRAIN_LENGTHS, 0, "train")
    write_split(root / "test.h5", TEST_LENGTHS, 1, "test")
    (root / "al.py").write_text(f"""
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
detector = dict(backend="double", datasets=("{root}/train.h5", "{root}/test.h5"))
schedule = dict(epochs=2, lr=0.01, batch_size=4)
evaluation = dict(score_threshold=0.5, nms_iou=0.5, max_frames=13)
al = dict(initial=4, budget=3, cycles=3, k=1, per_video=True, train_from="previous", reference=True,
          initial_schedule=dict(epochs=3))
acquisition = dict(name="entropy")
""")
    return root


def _config(tiny: Path, name: str) -> dict:
    cfg = load_config(tiny / "al.py")
    if name in SELECTOR_RUNS:
        acq = dict(SELECTOR_RUNS[name])
        cfg["al"].update(acq.pop("al", {}))
        cfg["acquisition"] = acq
        return cfg
    cfg["acquisition"] = {"name": name}
    if name == "temporal_coherence":
        cfg["tracker"] = {"name": "identity"}
    return cfg


def _strip_times(obj):
    if isinstance(obj, dict):
        return {k: _strip_times(v) for k, v in obj.items() if not k.startswith("time_") and k != "time_s"}
    return obj


def record(work: Path) -> dict:
    """What the fixture pins of one finished work dir."""
    out: dict = {"cycles": [], "rows": [], "reference": None}
    c = 0
    while (work / f"cycle_{c:03d}").is_dir():
        d = work / f"cycle_{c:03d}"
        cyc = {"eval": _strip_times(json.loads((d / "eval.json").read_text()))}
        if (d / "selection.npz").is_file():
            with np.load(d / "selection.npz") as z:
                cyc["selection"] = {k: z[k].tolist() for k in z.files if k != "times"}
        out["cycles"].append(cyc)
        c += 1
    out["rows"] = [_strip_times(json.loads(line)) for line in (work / "metrics.jsonl").read_text().splitlines()]
    if (work / "reference.json").is_file():
        out["reference"] = _strip_times(json.loads((work / "reference.json").read_text()))
    out["states"] = [np.load(p)["cycle_of"].tolist() for p in sorted(work.glob("state_cycle_*.npz"))]
    return out


def same(a, b, where: str = "") -> list[str]:
    """Differences between two recorded values: exact for ints / strings / bools, 1e-9 for floats."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))} differ"]
        return [d for k in a for d in same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: lengths {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{where}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
                or not isinstance(b, (int, float)):
            return [f"{where}: {a!r} vs {b!r}"]
        if (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9:
            return []
        return [f"{where}: {a!r} vs {b!r}"]
    return [] if (a == b and type(a) is type(b)) else [f"{where}: {a!r} vs {b!r}"]


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("pinned_runs")
    out = {}
    for name in ACQUISITIONS.names() + list(SELECTOR_RUNS):
        Experiment(_config(tiny, name), root / name, SEED, progress=False, threads=1, echo=lambda s: None).run()
        out[name] = record(root / name)
    if os.environ.get("VIDAL_REGEN_FIXTURES") == "1":
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(out, indent=None, sort_keys=True) + "\n")
    return out


def test_every_registered_acquisition_is_pinned(runs):
    pinned = json.loads(FIXTURE.read_text())
    assert sorted(pinned) == sorted(ACQUISITIONS.names() + list(SELECTOR_RUNS)), \
        "a new acquisition: regenerate the fixture (module docstring)"


@pytest.mark.parametrize("name", ACQUISITIONS.names() + list(SELECTOR_RUNS))
def test_selections_and_metrics_match_the_fixture(runs, name):
    pinned = json.loads(FIXTURE.read_text())[name]
    got = runs[name]
    for c, (p, g) in enumerate(zip(pinned["cycles"], got["cycles"])):
        if "selection" in p:  # the frames chosen: exactly
            for key in ("candidates", "selected", "real_fp", "real_fn", "budget"):
                assert g["selection"][key] == p["selection"][key], (name, c, key)
    assert got["states"] == pinned["states"], name
    diffs = same(pinned, got, name)
    assert not diffs, diffs[:10]


def test_the_double_is_not_trivial(runs):
    """The fixture would pin little if every method chose the same frames or nothing varied."""
    selections = {name: tuple(tuple(c["selection"]["selected"]) for c in r["cycles"] if "selection" in c)
                  for name, r in runs.items()}
    assert len(set(selections.values())) >= 5, selections
    ent = runs["entropy"]
    assert len({r["mAP"] for r in ent["rows"]}) > 1  # metrics change as the model "trains"
    assert len({r["rows"][-1]["mAP"] for r in runs.values()}) >= 5  # ... on the frames each method chose
    assert ent["cycles"][0]["eval"]["num_frames"] == 13  # evaluation.max_frames spread over the 20 test frames
    assert all(len(c["selection"]["selected"]) == 3 for c in ent["cycles"][:3])
    assert runs["temporal_coherence"]["rows"][0]["log"].keys() >= {"est_fp", "est_fn"}


def test_resumed_double_run_is_identical(tiny, tmp_path, runs):
    """Resume with the double: the files of the last cycle's evaluation, the metrics and the
    reference deleted (as a run killed after training cycle 3), the model loaded back from its file."""
    import shutil

    work = tmp_path / "w"
    Experiment(_config(tiny, "margin"), work, SEED, progress=False, threads=1, echo=lambda s: None).run()
    for name in ("row.json", "eval.json"):
        (work / "cycle_003" / name).unlink()
    (work / "metrics.jsonl").unlink()
    (work / "reference.json").unlink()
    shutil.rmtree(work / "reference")
    Experiment(_config(tiny, "margin"), work, SEED, resume=True, progress=False, threads=1,
               echo=lambda s: None).run()
    assert not same(runs["margin"], record(work), "margin")


# --------------------------------------------------------------------------- extension points


def test_worked_example_of_docs_architecture_runs(tiny, tmp_path, monkeypatch):
    """docs/architecture.md's worked example (a new need = one provider, a new acquisition = one
    class + registry line + config) runs the loop; registries restored afterwards."""
    import vidal.loop

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    block = text.split("<!-- worked example -->\n```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setattr(vidal.loop, "CONTEXT_PROVIDERS", dict(vidal.loop.CONTEXT_PROVIDERS))
    monkeypatch.setattr(ACQUISITIONS, "_items", dict(ACQUISITIONS._items))
    ns: dict = {}
    exec(compile(block, "docs/architecture.md", "exec"), ns)  # noqa: S102 - our own doc
    cfg = _config(tiny, "entropy")
    cfg["acquisition"] = ns["acquisition"]
    cfg["al"]["reference"] = False
    work = tmp_path / "early"
    Experiment(cfg, work, SEED, progress=False, threads=1, echo=lambda s: None).run()
    from vidal.data import VideoDataset

    ds = VideoDataset(tiny / "train.h5")
    for c in range(3):
        with np.load(work / f"cycle_{c:03d}" / "selection.npz") as z:
            position = np.array([ds.locate(int(i))[1] for i in z["candidates"]])
            assert (z["scores"] == -position).all()
            assert len(z["selected"]) == 3


def test_unknown_need_and_tracker_keys_are_one_line_errors(tiny, tmp_path, monkeypatch):
    from vidal.config import ConfigError

    cfg = _config(tiny, "temporal_coherence")
    cfg["tracker"] = {"name": "identity", "typo": 1}
    with pytest.raises(ConfigError, match=r"tracker \(identity\): unknown key\(s\) typo; valid keys: name") as e:
        Experiment(cfg, tmp_path / "w", SEED, progress=False)
    assert "\n" not in str(e.value)

    class NeedsMoon:
        name = "needs_moon"
        needs = frozenset({"moon"})

        def score(self, ctx):
            return np.zeros(len(ctx.candidates))

    monkeypatch.setattr(ACQUISITIONS, "_items", {**ACQUISITIONS._items, "needs_moon": NeedsMoon})
    cfg = _config(tiny, "needs_moon")
    with pytest.raises(ConfigError, match=r"acquisition \(needs_moon\) needs moon; the loop provides predictions"):
        Experiment(cfg, tmp_path / "w", SEED, progress=False)
    assert not (tmp_path / "w").exists()
