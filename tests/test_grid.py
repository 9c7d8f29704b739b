"""Tests of the grid runner (vidal/grid.py, tools/run_grid.py) and the shared cycle 0 (vidal/loop.py)
on a tiny generated dataset with a tiny detector: a grid killed with SIGKILL mid-run and restarted
ends with the same rows as an uninterrupted one; bad input is one line before any training; a
failing run does not stop the others; the paired statistics of vidal/results.py."""

from __future__ import annotations

import csv
import os
import signal
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidal.grid import GridError, choose_methods, discover_methods, parse_seeds, plan, threads_per_worker
from vidal.results import label_efficiency, paired_difference, selection_distance
from tiny_videos import tiny_experiment_config, write_split

REPO = Path(__file__).resolve().parents[1]
GRID = [sys.executable, str(REPO / "tools" / "run_grid.py")]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A folder of method configs (``cfgs/``) over a tiny dataset, one shared protocol."""
    root = tmp_path_factory.mktemp("grid")
    write_split(root / "train.h5", [6, 10, 14, 12], 0, "train")
    write_split(root / "test.h5", [6, 6], 1, "test")
    cfgs = root / "cfgs"
    cfgs.mkdir()
    (cfgs / "_protocol.py").write_text(f"""
{tiny_experiment_config(root)}evaluation = dict(score_threshold=0.05, nms_iou=0.5, max_frames=8)
al = dict(initial=4, budget=3, cycles=2, k=1, per_video=True, train_from="previous", reference=False,
          initial_schedule=dict(epochs=2, milestones=(2,)))
""")
    for name, acq in [("random-r", 'dict(name="random_r")'), ("entropy-mean", 'dict(name="entropy")'),
                      ("oracle-fp", 'dict(name="oracle_fp")')]:
        (cfgs / f"{name}.py").write_text(f'_base_ = ["_protocol.py"]\nacquisition = {acq}\n')
    return root


def _grid(tiny, work, *args, timeout=600):
    return subprocess.run([*GRID, str(tiny / "cfgs"), "--work-dir", str(work), "--workers", "2", *args],
                          capture_output=True, text=True, timeout=timeout)


def _rows(work: Path) -> list[dict]:
    with open(work / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


@pytest.fixture(scope="module")
def uninterrupted(tiny, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("g") / "grid"
    res = _grid(tiny, work, "--seeds", "0,1")
    assert res.returncode == 0, res.stderr[-2000:]
    return work


def test_grid_runs_every_method_and_seed_with_a_shared_cycle0(uninterrupted):
    rows = _rows(uninterrupted)
    methods = {r["method"] for r in rows}
    assert methods == {"random-r", "entropy-mean", "oracle-fp", "all-data"}
    for m in ("random-r", "entropy-mean", "oracle-fp"):
        for s in ("0", "1"):
            assert [r["cycle"] for r in rows if r["method"] == m and r["seed"] == s] == ["0", "1", "2"]
    # cycle 0 is the same model for every method of a seed: the same mAP and labeled set
    for s in ("0", "1"):
        c0 = {r["map50"] for r in rows if r["seed"] == s and r["cycle"] == "0"}
        assert len(c0) == 1
        states = [np.load(uninterrupted / m / f"seed{s}" / "state_cycle_000.npz")["cycle_of"]
                  for m in ("random-r", "entropy-mean", "oracle-fp")]
        assert all((st == states[0]).all() for st in states)
    assert (uninterrupted / "results.md").is_file() and (uninterrupted / "results_curves.png").is_file()
    assert "Paired diff. to random-r" in (uninterrupted / "results.md").read_text()


def test_rerun_skips_finished_runs(tiny, uninterrupted):
    t = time.perf_counter()
    res = _grid(tiny, uninterrupted, "--seeds", "0,1")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.count("finished before") == 2 + 6 + 2  # cycle 0, methods, references
    assert time.perf_counter() - t < 120


def test_killed_grid_resumes_to_the_same_rows(tiny, uninterrupted, tmp_path):
    work = tmp_path / "grid"
    proc = subprocess.Popen([*GRID, str(tiny / "cfgs"), "--work-dir", str(work), "--workers", "2", "--seeds", "0,1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # kill the whole grid (its workers die with it) once some method run has finished a cycle
        deadline = time.time() + 300
        while time.time() < deadline and not list(work.glob("*/seed*/cycle_001/row.json")):
            time.sleep(0.2)
        assert list(work.glob("*/seed*/cycle_001/row.json")), "no cycle finished in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(1.0)
    assert not (work / "results.csv").exists()
    # no orphaned worker goes on writing: nothing changes in the work dir once the grid is dead
    before = sorted((p, p.stat().st_mtime_ns) for p in work.rglob("*") if p.is_file())
    time.sleep(2.0)
    assert sorted((p, p.stat().st_mtime_ns) for p in work.rglob("*") if p.is_file()) == before
    res = _grid(tiny, work, "--seeds", "0,1")
    assert res.returncode == 0, res.stderr[-2000:]
    assert _rows(work) == _rows(uninterrupted)


def test_failing_run_is_reported_and_the_others_finish(tiny, tmp_path):
    cfgs = tmp_path / "cfgs"
    cfgs.mkdir()
    for p in (tiny / "cfgs").glob("*.py"):
        (cfgs / p.name).write_text(p.read_text().replace("_protocol.py", str(tiny / "cfgs" / "_protocol.py")))
    work = tmp_path / "grid"
    env = {**os.environ, "VIDAL_FAIL_ACQUISITION": "oracle_fp"}
    res = subprocess.run([*GRID, str(cfgs), "--work-dir", str(work), "--workers", "2", "--seeds", "0",
                          "--no-reference"], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 1
    assert "failed: oracle-fp_seed0" in res.stderr
    assert {r["method"] for r in _rows(work)} == {"random-r", "entropy-mean"}


@pytest.mark.parametrize("args, message", [
    (["--methods", "random-r,nope"], "unknown method 'nope'; valid: entropy-mean, oracle-fp, random-r"),
    (["--seeds", "0,one"], "--seeds must be comma-separated integers >= 0 like 0,1,2, got '0,one'"),
    (["--seeds", "1,1"], "--seeds names a seed twice"),
    (["--workers", "0"], "--workers must be >= 1"),
])
def test_bad_input_is_one_line_before_any_work(tiny, tmp_path, args, message):
    work = tmp_path / "grid"
    res = _grid(tiny, work, *args)
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not work.exists()


def test_work_dir_holding_another_grid_is_refused(tiny, uninterrupted, tmp_path):
    cfgs = tmp_path / "cfgs"
    cfgs.mkdir()
    text = (tiny / "cfgs" / "_protocol.py").read_text().replace("budget=3", "budget=2")
    (cfgs / "_protocol.py").write_text(text)
    (cfgs / "random-r.py").write_text('_base_ = ["_protocol.py"]\nacquisition = dict(name="random_r")\n')
    res = subprocess.run([*GRID, str(cfgs), "--work-dir", str(uninterrupted), "--seeds", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "holds" in res.stderr and "choose another --work-dir" in res.stderr
    # a folder that is no grid at all
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    res = _grid(tiny, other, "--seeds", "0")
    assert res.returncode != 0 and "holds no grid" in res.stderr


def test_methods_that_do_not_share_a_protocol_are_refused(tiny, tmp_path):
    cfgs = tmp_path / "cfgs"
    cfgs.mkdir()
    (cfgs / "_protocol.py").write_text((tiny / "cfgs" / "_protocol.py").read_text())
    (cfgs / "a.py").write_text('_base_ = ["_protocol.py"]\nacquisition = dict(name="random_r")\n')
    (cfgs / "b.py").write_text('_base_ = ["_protocol.py"]\nacquisition = dict(name="entropy")\nschedule = dict(lr=0.02)\n')
    res = subprocess.run([*GRID, str(cfgs), "--work-dir", str(tmp_path / "g"), "--seeds", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "b.py: its protocol" in res.stderr and "Traceback" not in res.stderr


# --------------------------------------------------------------------------- pure parts
def test_inputs_and_plan(tiny, tmp_path):
    methods = discover_methods(tiny / "cfgs")
    assert list(methods) == ["entropy-mean", "oracle-fp", "random-r"]  # _protocol.py is a base
    assert list(choose_methods(methods, "random-r,oracle-fp")) == ["random-r", "oracle-fp"]
    with pytest.raises(GridError, match="twice"):
        choose_methods(methods, "random-r,random-r")
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    with pytest.raises(GridError):
        parse_seeds("-1")
    assert threads_per_worker(2, 2) == 1 and threads_per_worker(1, 2) == 2 and threads_per_worker(4, 2) == 1
    jobs = plan(methods, [0, 1], tmp_path, reference=True)
    assert [j.name for j in jobs[:2]] == ["cycle0_seed0", "cycle0_seed1"]
    assert [j.name for j in jobs[-2:]] == ["all-data_seed0", "all-data_seed1"]
    assert all(j.after == f"cycle0_seed{j.seed}" for j in jobs if j.kind == "method")


def test_paired_difference_and_interval():
    rows = [{"method": m, "seed": s, "cycle": 1, "map50": v, "labeled_frames": 10}
            for m, vals in (("a", [0.5, 0.6, 0.7]), ("b", [0.4, 0.55, 0.6])) for s, v in enumerate(vals)]
    p = paired_difference(rows, "a", "b", 1)
    assert p["diffs"] == pytest.approx([0.1, 0.05, 0.1])
    assert p["mean"] == pytest.approx(0.25 / 3)
    assert p["std"] == pytest.approx(np.std([0.1, 0.05, 0.1], ddof=1))
    half = 4.302652729911275 * p["std"] / np.sqrt(3)
    assert p["ci95"] == pytest.approx((p["mean"] - half, p["mean"] + half))
    assert p["above_2std"]
    from scipy.stats import ttest_rel

    assert p["p"] == pytest.approx(ttest_rel([0.5, 0.6, 0.7], [0.4, 0.55, 0.6]).pvalue)


def test_holm_adjustment_of_several_comparisons():
    from vidal.results import holm_adjusted, paired_t_p

    adjusted = holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03, "d": float("nan")})
    # sorted 0.01 x 3, 0.03 x 2, 0.04 x 1 -> 0.03, 0.06, then max(0.06, 0.04); NaN not counted
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["c"] == pytest.approx(0.06)
    assert adjusted["b"] == pytest.approx(0.06) and np.isnan(adjusted["d"])
    assert holm_adjusted({"a": 0.2, "b": 0.9}) == pytest.approx({"a": 0.4, "b": 0.9})
    assert paired_t_p(0.1, 0.0, 3) == 0.0 and paired_t_p(0.0, 0.0, 3) == 1.0 and np.isnan(paired_t_p(0.1, 0.1, 1))


def test_label_efficiency_and_selection_distance():
    assert label_efficiency(np.array([10, 20, 30]), np.array([0.2, 0.4, 0.6]), 0.5) == pytest.approx(25.0)
    assert label_efficiency(np.array([10, 20]), np.array([0.2, 0.3]), 0.5) is None
    assert label_efficiency(np.array([10, 20]), np.array([0.6, 0.7]), 0.5) == 10.0
    v = np.array([0, 0, 0, 1, 1, 1])
    d = selection_distance(np.array([0, 1]), np.array([3, 4]), v)
    assert d["jaccard"] == 0.0 and d["video_tv"] == 1.0
    d = selection_distance(np.array([0, 3]), np.array([1, 4]), v)
    assert d["jaccard"] == 0.0 and d["video_tv"] == 0.0


def test_cycle0_of_another_seed_or_config_is_refused(tiny, uninterrupted, tmp_path):
    run_al = [sys.executable, str(REPO / "tools" / "run_al.py")]
    src = uninterrupted / "_cycle0" / "seed0"
    res = subprocess.run([*run_al, str(tiny / "cfgs" / "entropy-mean.py"), "--work-dir", str(tmp_path / "a"),
                          "--seed", "1", "--threads", "1", "--quiet", "--cycle0-from", str(src)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "cycle0.json: its cycle 0 was made with another seed" in res.stderr
    res = subprocess.run([*run_al, str(tiny / "cfgs" / "entropy-mean.py"), "--work-dir", str(tmp_path / "b"),
                          "--seed", "0", "--threads", "1", "--quiet", "--cycle0-from", str(src),
                          "--cfg-options", "schedule.lr=0.02"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "another config" in res.stderr
    res = subprocess.run([*run_al, str(tiny / "cfgs" / "entropy-mean.py"), "--work-dir", str(tmp_path / "c"),
                          "--seed", "0", "--quiet", "--cycle0-from", str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0 and "holds no shared cycle 0" in res.stderr and "--only cycle0" in res.stderr
    assert not (tmp_path / "a" / "cycle_000").exists()


@pytest.mark.parametrize("value, message", [
    ("{'epochs': 0}", "al.initial_schedule.epochs must be an int >= 1"),
    ("{'epoch': 3}", "al.initial_schedule"),
    ("{'milestones': (0,)}", "al.initial_schedule.milestones"),
    ("3", "al.initial_schedule must be a dict"),
])
def test_initial_schedule_errors_are_one_line(tiny, tmp_path, value, message):
    res = subprocess.run([sys.executable, str(REPO / "tools" / "run_al.py"), str(tiny / "cfgs" / "random-r.py"),
                          "--work-dir", str(tmp_path / "w"), "--quiet", "--cfg-options", f"al.initial_schedule={value}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "w").exists()


def test_the_report_ranks_and_plots_the_chosen_metric():
    """summary_markdown ranks on ``key``; report_figures plots the ranked metric first and the other
    one beside it (a report that ranked one metric and plotted another was a bug)."""
    from vidal.results import report_figures, summary_markdown

    rows = [{"method": m, "seed": s, "cycle": c, "labeled_frames": 10 + 5 * c, "map50": t, "map50_all_scores": a}
            for m, thesis, every in (("random-r", [0.1, 0.2], [0.3, 0.4]), ("oracle-fp", [0.1, 0.25], [0.3, 0.35]))
            for s in (0, 1) for c, (t, a) in enumerate(zip(thesis, every))]
    every = summary_markdown(rows, ["random-r", "oracle-fp"], key="map50_all_scores")
    thesis = summary_markdown(rows, ["random-r", "oracle-fp"], key="map50")
    assert "| oracle-fp | 2 | 15 | 0.350 ± 0.000 |" in every and "-0.050 [" in every
    assert "| oracle-fp | 2 | 15 | 0.250 ± 0.000 |" in thesis and "+0.050 [" in thesis
    for metric, other in (("map50_all_scores", "map50"), ("map50", "map50_all_scores")):
        figs = report_figures("cpu", metric, ["car"], 4)
        assert [f["key"] for f in figs] == [metric, f"{metric}_frequent", other]
        assert [f["file"] for f in figs] == ["cpu_curves.png", "cpu_curves_frequent.png", "cpu_curves_other.png"]


def test_the_table_marks_a_method_that_has_not_reached_the_final_cycle():
    from vidal.results import summary_markdown

    rows = [{"method": m, "seed": s, "cycle": c, "labeled_frames": 10 + 5 * c, "map50": 0.1 * (c + 1)}
            for m, cycles in (("random-r", 3), ("oracle-fn", 1)) for s in (0, 1) for c in range(cycles)]
    table = summary_markdown(rows, ["random-r", "oracle-fn"], key="map50")
    assert "| oracle-fn (unfinished: cycle 0 of 2) | 2 | 10 |" in table and "| random-r | 2 | 20 |" in table


def test_paired_test_tool_on_chosen_seeds_and_its_errors(tmp_path):
    """tools/paired_test.py: the registered one-sided test of a method against the baseline on
    chosen seeds (figures checked against scipy), and one-line errors for a missing or unfinished run."""
    from scipy.stats import ttest_rel

    grid = tmp_path / "grid"
    values = {"ld": [0.30, 0.25, 0.33, 0.9], "random-r": [0.28, 0.27, 0.30, 0.1]}
    for m, vals in values.items():
        for s, v in enumerate(vals):
            run = grid / m / f"seed{s}"
            run.mkdir(parents=True)
            cycles = 2 if (m, s) == ("ld", 3) else 3  # seed 3 of ld stopped early
            run.joinpath("metrics.jsonl").write_text("".join(
                json.dumps({"cycle": c, "labeled": 48 + 20 * c, "mAP": v / 2, "mAP_all_scores": v if c == 2 else 0.1,
                            "pool_frames": 555}) + "\n" for c in range(cycles)))
    tool = [sys.executable, str(REPO / "tools" / "paired_test.py"), str(grid), "--method", "ld"]
    res = subprocess.run([*tool, "--seeds", "0,1,2", "--alternative", "greater"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    expected = ttest_rel(values["ld"][:3], values["random-r"][:3], alternative="greater").pvalue
    assert "cycle 2 (88 labeled frames)" in res.stdout and "seed 1: 0.2500 - 0.2700 = -0.0200" in res.stdout
    assert f"paired t p (greater) = {expected:.3f}" in res.stdout and "mean +0.0100" in res.stdout
    res = subprocess.run([*tool, "--seeds", "0,1,3"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"{grid / 'ld' / 'seed3'} stopped at cycle 1, the others reached cycle 2" in res.stderr
    res = subprocess.run([*tool, "--seeds", "0,7"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and f"{grid / 'ld' / 'seed7'}: no finished cycle" in res.stderr
    res = subprocess.run([*tool, "--seeds", "0,x"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--seeds must be comma-separated integers" in res.stderr
