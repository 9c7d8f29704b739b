"""Tests of the AL experiment (vidal/loop.py, tools/run_al.py) on a tiny generated dataset (five
short 96x64 videos of moving rectangles) with a tiny detector (MobileNetV3-FPN at height 64, one
epoch): every acquisition end to end, determinism, a real run killed with SIGKILL at several
points and resumed, validation before training, and Oracle (FP) selecting frames with more real
false positives than Random+R."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vidal.acquisition  # noqa: F401 - registers the acquisitions

from vidal.config import ConfigError, load_config
from vidal.loop import Experiment
from vidal.workdir import ExperimentError
from vidal.registry import ACQUISITIONS
from tiny_videos import tiny_experiment_config, write_split

REPO = Path(__file__).resolve().parents[1]
TRAIN_LENGTHS = [6, 10, 14, 12]
TEST_LENGTHS = [6, 6]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A folder with train.h5, test.h5 and a config file ``al.py`` (entropy, 2 selections)."""
    root = tmp_path_factory.mktemp("al")
    write_split(root / "train.h5", TRAIN_LENGTHS, 0, "train")
    write_split(root / "test.h5", TEST_LENGTHS, 1, "test")
    (root / "al.py").write_text(f"""
{tiny_experiment_config(root)}evaluation = dict(score_threshold=0.05, nms_iou=0.5)   # an untrained detector: count its many FPs
al = dict(initial=4, budget=3, cycles=2, k=1, per_video=True, train_from="previous", reference=False)
acquisition = dict(name="entropy")
""")
    return root


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _cfg(tiny: Path, **options):
    return load_config(tiny / "al.py", options)


def _run(tiny, work, seed=0, **options):
    return Experiment(_cfg(tiny, **options), work, seed, progress=False, threads=1, echo=lambda s: None).run()


def _strip(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


def _states(work: Path):
    return [np.load(p)["cycle_of"].tolist() for p in sorted(work.glob("state_cycle_*.npz"))]


# --------------------------------------------------------------------------- every acquisition


METHODS = sorted(set(ACQUISITIONS.names()) - {"temporal_coherence"})


@pytest.fixture(scope="module")
def e2e(tiny, tmp_path_factory) -> dict[str, Path]:
    """One run (one selection) of every registered acquisition; TC with the identity tracker."""
    root = tmp_path_factory.mktemp("e2e")
    n = torch.get_num_threads()
    works = {}
    for name in METHODS + (["temporal_coherence"] if "temporal_coherence" in ACQUISITIONS else []):
        cfg = _cfg(tiny, **{"al.cycles": 1})
        cfg["acquisition"] = {"name": name}
        if name == "temporal_coherence":
            cfg["acquisition"]["score_threshold"] = 0.05
            cfg["tracker"] = {"name": "identity"}
        exp = Experiment(cfg, root / name, 0, progress=False, threads=1, echo=lambda s: None)
        # plain random ignores the protocol's exclusion and per-video sampling; the others use it
        assert (exp.k, exp.per_video) == ((0, False) if name == "random" else (1, True))
        exp.run()
        works[name] = root / name
    torch.set_num_threads(n)
    return works


def test_every_acquisition_runs_end_to_end_and_oracle_fp_finds_more_false_positives(e2e):
    fp = {}
    for name, work in e2e.items():
        rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
        assert [r["cycle"] for r in rows] == [0, 1], name
        assert [r["labeled"] for r in rows] == [4, 7], name
        r0 = rows[0]
        assert r0["acquisition"] == name and r0["selected"] == 3 and r0["shortfall"] == 0
        assert r0["mAP"] is None or 0.0 <= r0["mAP"] <= 1.0
        assert set(r0["AP"]) == {"bright", "dark"}
        for key in ("time_train_s", "time_evaluate_s", "time_predict_s", "time_acquire_s", "time_select_s"):
            assert r0[key] >= 0.0, (name, key)
        assert rows[1]["selected"] is None
        if name == "temporal_coherence":
            assert {"est_fp", "est_fn"} <= set(r0["log"])
        fp[name] = r0["selected_real_fp_mean"]
        # the state files: initial set identical for every method of the seed, 3 new frames
        states = _states(work)
        assert len(states) == 2
        if name == next(iter(e2e)):
            initial = states[0]
        assert states[0] == initial
        s1 = np.array(states[1])
        assert (s1 == 0).sum() == 4 and (s1 == 1).sum() == 3
        # only the latest checkpoint is kept
        assert not (work / "cycle_000" / "model.pt").exists() and (work / "cycle_001" / "model.pt").is_file()
        exp = json.loads((work / "experiment.json").read_text())
        assert exp["seed"] == 0 and {"torch", "torchvision", "numpy", "vidal"} <= set(exp["versions"])
        assert exp["git_commit"]
    # every method started from the same cycle-0 model: the oracle picks the frames with most FPs
    assert fp["oracle_fp"] > fp["random_r"], fp
    # and under the same exclusion / per-video rules no method finds more (plain random has none)
    assert fp["oracle_fp"] >= max(v for k, v in fp.items() if k != "random") - 1e-9, fp


def test_same_config_and_seed_give_identical_selections_and_metrics(tiny, e2e, tmp_path):
    a = e2e["entropy"]
    b = tmp_path / "b"
    _run(tiny, b, **{"al.cycles": 1})  # the same experiment as the e2e entropy run
    rows = lambda p: [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert _strip(rows(a)) == _strip(rows(b))
    assert _states(a) == _states(b)
    np.testing.assert_array_equal(np.load(a / "cycle_000/selection.npz")["scores"],
                                  np.load(b / "cycle_000/selection.npz")["scores"])


# --------------------------------------------------------------------------- validation


def test_wrong_inputs_stop_before_training(tiny, tmp_path):
    work = tmp_path / "w"
    bad = {
        "acquisition": ({"name": "entropie"}, "unknown acquisition 'entropie'; valid names: entropy"),
        "acq-kw": ({"name": "entropy", "aggregaton": "sum"}, r"acquisition \(entropy\): unknown key\(s\) aggregaton"),
        "acq-value": ({"name": "margin", "aggregation": "median"}, "aggregation must be one of"),
    }
    for _, (acq, msg) in bad.items():
        cfg = _cfg(tiny)
        cfg["acquisition"] = acq
        with pytest.raises(ConfigError, match=msg):
            Experiment(cfg, work, 0, progress=False)
    cfg = _cfg(tiny, **{"al.budget": 20})
    with pytest.raises(ConfigError, match=r"4 initial \+ 2 x 20 = 44 frames, more than the 42 frames"):
        Experiment(cfg, work, 0, progress=False)
    cfg = _cfg(tiny)
    cfg["al"]["cycels"] = 3
    with pytest.raises(ConfigError, match=r"al: unknown key\(s\) cycels; valid keys: budget, budget_unit, cold_start, cycles"):
        Experiment(cfg, work, 0, progress=False)
    cfg = _cfg(tiny)
    cfg["acquisition"] = {"name": "temporal_coherence"} if "temporal_coherence" in ACQUISITIONS else cfg["acquisition"]
    cfg["tracker"] = {"name": "identiti"}
    with pytest.raises(ConfigError, match="unknown tracker 'identiti'; valid names: .*identity"):
        Experiment(cfg, work, 0, progress=False)
    if "temporal_coherence" in ACQUISITIONS:
        cfg["tracker"] = {"name": "flow"}  # no flow cache next to train.h5: said before any training
        with pytest.raises(ConfigError, match="tracker \\(flow\\): no flow cache .*tools/compute_flow.py"):
            Experiment(cfg, work, 0, progress=False)
        del cfg["tracker"]
        with pytest.raises(ConfigError, match="no 'tracker' section"):
            Experiment(cfg, work, 0, progress=False)
    assert not work.exists()  # nothing was written, nothing trained
    # a work dir holding another experiment
    (work / "cycle_000").mkdir(parents=True)
    with pytest.raises(ExperimentError, match="not empty and holds no vidal AL experiment"):
        Experiment(_cfg(tiny), work, 0, progress=False)


def test_work_dir_of_a_different_experiment_is_refused(tiny, tmp_path):
    work = tmp_path / "w"
    res = _run(tiny, work, **{"al.cycles": 0, "al.reference": True})
    ref = json.loads((work / "reference.json").read_text())  # the all-data run
    assert res["reference"] == ref and ref["labeled"] == sum(TRAIN_LENGTHS) and ref["acquisition"] == "all_data"
    assert len(res["rows"]) == 1 and res["rows"][0]["labeled"] == 4
    with pytest.raises(ExperimentError, match=r"holds a different experiment \(seed 0 vs 1\)"):
        Experiment(_cfg(tiny, **{"al.cycles": 0, "al.reference": True}), work, 1, progress=False)
    with pytest.raises(ExperimentError, match=r"holds a different experiment \(config sections al\)"):
        Experiment(_cfg(tiny, **{"al.cycles": 0, "al.reference": True, "al.k": 2}), work, 0, progress=False)
    with pytest.raises(ExperimentError, match="already holds this experiment; pass --resume"):
        Experiment(_cfg(tiny, **{"al.cycles": 0, "al.reference": True}), work, 0, progress=False)
    # resuming a finished run does nothing and keeps the metrics
    before = (work / "metrics.jsonl").read_text()
    Experiment(_cfg(tiny, **{"al.cycles": 0, "al.reference": True}), work, 0, resume=True, progress=False,
               echo=lambda s: None).run()
    assert (work / "metrics.jsonl").read_text() == before


# --------------------------------------------------------------------------- kill and resume


def _cli(tiny, work, *extra, env=None):
    cmd = [sys.executable, str(REPO / "tools/run_al.py"), str(tiny / "al.py"), "--work-dir", str(work),
           "--seed", "0", "--threads", "1", "--quiet", *extra]
    full_env = dict(os.environ)
    full_env.pop("VIDAL_STALL_WRITE", None)
    full_env.update(env or {})
    return cmd, full_env


def _run_until(cmd, env, marker: str, delay: float = 0.0, timeout: float = 900) -> str:
    """Start ``cmd``, SIGKILL it ``delay`` s after a stdout line contains ``marker``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO)
    seen = []
    t0 = time.time()
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                time.sleep(delay)
                break
            assert time.time() - t0 < timeout, "".join(seen)
        else:
            pytest.fail(f"run ended before {marker!r}:\n{''.join(seen)}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return "".join(seen)


def test_killed_run_resumes_to_the_same_selections_and_metrics(tiny, tmp_path):
    full = tmp_path / "full"  # the uninterrupted run (in this process, same threads as the CLI runs)
    _run(tiny, full)

    work = tmp_path / "killed"
    # 1. killed while writing the pool predictions of cycle 0 (acquisition step): only the .tmp is there
    cmd, env = _cli(tiny, work, env={"VIDAL_STALL_WRITE": "pool_predictions.npz"})
    _run_until(cmd, env, "STALL pool_predictions.npz")
    assert (work / "cycle_000" / "pool_predictions.npz.tmp").is_file()
    assert not (work / "cycle_000" / "pool_predictions.npz").exists()
    # 2. resumed, then killed during the training of cycle 1
    cmd, env = _cli(tiny, work, "--resume")
    log = _run_until(cmd, env, "cycle 1: train", delay=0.3)
    assert "resuming experiment" in log and "cycle 0: selected 3 frames" in log
    assert not (work / "cycle_001" / "row.json").exists()
    # 3. resumed to the end
    cmd, env = _cli(tiny, work, "--resume")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert f"wrote {work / 'metrics.jsonl'} (3 cycles)" in out.stdout

    rows = lambda p: [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    assert len(rows(work)) == 3 and _strip(rows(work)) == _strip(rows(full))
    assert _states(work) == _states(full)
    for c in (0, 1):
        a = np.load(work / f"cycle_{c:03d}" / "selection.npz")
        b = np.load(full / f"cycle_{c:03d}" / "selection.npz")
        np.testing.assert_array_equal(a["selected"], b["selected"])
        np.testing.assert_array_equal(a["scores"], b["scores"])
    assert not list(work.rglob("*.tmp"))  # every interrupted write was redone


def test_interrupted_write_leaves_no_half_file(tmp_path):
    """A write killed before its rename leaves the old content (or nothing), never a partial file."""
    from vidal.workdir import atomic_write

    code = ("import sys; from pathlib import Path; from vidal.workdir import atomic_write; "
            "atomic_write(Path(sys.argv[1]), lambda f: f.write('new'), 'w')")
    target = tmp_path / "metrics.jsonl"
    atomic_write(target, lambda f: f.write("old"), "w")
    cmd = [sys.executable, "-c", code, str(target)]
    env = {**os.environ, "VIDAL_STALL_WRITE": "metrics.jsonl"}
    _run_until(cmd, env, "STALL metrics.jsonl")
    assert target.read_text() == "old" and (tmp_path / "metrics.jsonl.tmp").read_text() == "new"


def test_cli_errors_are_one_line(tiny, tmp_path):
    import importlib.util

    from click.testing import CliRunner

    spec = importlib.util.spec_from_file_location("run_al", REPO / "tools/run_al.py")
    run_al = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_al)
    res = CliRunner().invoke(run_al.main, [str(tiny / "al.py"), "--work-dir", str(tmp_path / "x"),
                                           "--cfg-options", "acquisition.name=nope"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"Error: {tiny / 'al.py'}: acquisition.name: unknown acquisition 'nope'; valid names: "
        + ", ".join(ACQUISITIONS.names())]
    assert not (tmp_path / "x").exists()


def test_report_reads_real_run_folders(e2e, tmp_path):
    from vidal.report import load_runs, plot_curves, table

    runs = load_runs(list(e2e.values()))
    rows = table(runs)
    assert len(rows) == len(e2e) and {r["seeds"] for r in rows} == {1}
    assert {r["labeled"] for r in rows} == {7.0}
    assert plot_curves(runs, tmp_path / "c.png").stat().st_size > 5000
