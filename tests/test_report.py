"""Tests of vidal/report.py and tools/plot_curves.py, tools/make_table.py on hand-made run folders
(the files tools/run_al.py writes): grouping by method, mean ± std over 2 seeds, the all-data
reference, PNG / markdown / CSV outputs, clean errors."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidal.config import dump
from vidal.report import ReportError, curves, load_runs, method_label, table, table_markdown

REPO = Path(__file__).resolve().parents[1]


def tool(name: str):
    """The click command of tools/<name>.py, run in this process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return lambda *args: CliRunner().invoke(mod.main, [str(a) for a in args])


def fake_run(path: Path, acquisition: dict, seed: int, maps, reference=None, tracker=None) -> Path:
    """A run folder as tools/run_al.py leaves it: config.py, experiment.json, metrics.jsonl."""
    path.mkdir(parents=True)
    cfg = {"al": {"initial": 10, "budget": 10, "cycles": len(maps) - 1}, "acquisition": acquisition}
    if tracker:
        cfg["tracker"] = tracker
    (path / "config.py").write_text(dump(cfg))
    (path / "experiment.json").write_text(json.dumps({"seed": seed}))
    rows = [{"cycle": c, "labeled": 10 * (c + 1), "labeled_fraction": 0.02 * (c + 1), "mAP": m, "seed": seed,
             "acquisition": acquisition["name"]} for c, m in enumerate(maps)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if reference is not None:
        (path / "reference.json").write_text(json.dumps({"mAP": reference, "seed": seed}))
    return path


@pytest.fixture()
def runs(tmp_path) -> list[Path]:
    return [
        fake_run(tmp_path / "rr0", {"name": "random_r"}, 0, [0.10, 0.20, 0.30], reference=0.50),
        fake_run(tmp_path / "rr1", {"name": "random_r"}, 1, [0.12, 0.22, 0.34], reference=0.70),
        fake_run(tmp_path / "en0", {"name": "entropy", "aggregation": "mean"}, 0, [0.10, 0.25, 0.40]),
        fake_run(tmp_path / "en1", {"name": "entropy", "aggregation": "mean"}, 1, [0.12, 0.27, 0.44]),
        fake_run(tmp_path / "tc0", {"name": "temporal_coherence", "target": "fp"}, 0, [0.1, 0.3], tracker={"name": "flow"}),
    ]


def test_curves_and_table_mean_std_over_seeds(runs):
    rs = load_runs(runs)
    cs = curves(rs)
    assert list(cs) == ["Random+R", "Entropy (aggregation=mean)", "Temporal coherence [flow] (target=fp)"]
    en = cs["Entropy (aggregation=mean)"]
    assert en["n"] == 2 and en["labeled"].tolist() == [10, 20, 30]
    assert en["mean"].tolist() == pytest.approx([0.11, 0.26, 0.42])
    assert en["std"].tolist() == pytest.approx([0.0141421, 0.0141421, 0.0282843], rel=1e-4)  # ddof=1
    rows = table(rs)
    assert [r["method"] for r in rows] == ["All data", "Random+R", "Entropy (aggregation=mean)",
                                          "Temporal coherence [flow] (target=fp)"]
    ref, rr, en_row, tc = rows
    assert ref["mAP_mean"] == pytest.approx(0.6) and ref["seeds"] == 2 and ref["rel_mean"] == 1.0
    assert en_row["mAP_mean"] == pytest.approx(0.42) and en_row["rel_mean"] == pytest.approx(0.7)
    assert en_row["labeled"] == 30 and en_row["cycle"] == 2
    assert tc["seeds"] == 1 and tc["mAP_std"] == 0.0 and tc["cycle"] == 1
    md = table_markdown(rows)
    assert "| Entropy (aggregation=mean) | 2 | 30 (6.0 %) | 0.420 ± 0.028 | 70.0 ± 4.7 % |" in md
    assert "| All data | 2 | all | 0.600 ± 0.141 | 100.0 ± 23.6 % |" in md


def test_method_labels():
    assert method_label({"acquisition": {"name": "margin", "aggregation": "sum", "class_weighting": False}}) \
        == "Margin sampling (aggregation=sum)"
    assert method_label({"acquisition": {"name": "oracle_fp"}}) == "Oracle (FP)"
    assert method_label({"acquisition": {"name": "mine", "x": 1}}) == "mine (x=1)"
    # runs of another detector backend are another method (never merged as extra seeds)
    assert method_label({"acquisition": {"name": "oracle_fp"}, "detector": {"backend": "mmdet"}}) == "Oracle (FP) · mmdet"
    assert method_label({"acquisition": {"name": "oracle_fp"}, "detector": {"backend": "torchvision_frcnn"}}) \
        == "Oracle (FP)"


def test_tools_write_png_markdown_and_csv(runs, tmp_path):
    fig = tmp_path / "out" / "curves.png"
    out = tool("plot_curves")(*runs, "--out", fig)
    assert out.exit_code == 0, out.output
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.stat().st_size > 5000
    assert f"wrote {fig}" in out.output and "Entropy (aggregation=mean): 2 seed(s), 3 cycles" in out.output
    prefix = tmp_path / "out" / "table"
    out = tool("make_table")(*runs, "--out", prefix)
    assert out.exit_code == 0, out.output
    md = (tmp_path / "out" / "table.md").read_text()
    assert md.startswith("| Method | Seeds |") and "Random+R" in md and md in out.output
    with open(tmp_path / "out" / "table.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows][:2] == ["All data", "Random+R"]
    rr = rows[1]
    assert float(rr["mAP_mean"]) == pytest.approx(0.32) and float(rr["mAP_std"]) == pytest.approx(0.0282843, rel=1e-4)
    assert float(rr["rel_mean"]) == pytest.approx(0.32 / 0.6)


def test_errors(runs, tmp_path):
    with pytest.raises(ReportError, match="no metrics.jsonl"):
        load_runs([tmp_path / "nothing"])
    with pytest.raises(ReportError, match="two runs of Random\\+R with seed 0"):
        load_runs([runs[0], runs[0]])
    out = tool("make_table")(tmp_path / "nothing")
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [f"Error: {tmp_path / 'nothing'}: no metrics.jsonl (not an AL run "
                                               "folder of tools/run_al.py, or not started)"]


def test_make_table_keeps_existing_outputs_without_overwrite(runs, tmp_path):
    prefix = tmp_path / "t" / "table"
    prefix.parent.mkdir()
    (tmp_path / "t" / "table.csv").write_text("old")
    out = tool("make_table")(*runs, "--out", prefix)
    assert out.exit_code == 1 and out.output.strip().splitlines() == [
        f"Error: {tmp_path / 't' / 'table.csv'} exists; pass --overwrite to replace it, or choose another --out"]
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["table.csv"]
    assert (tmp_path / "t" / "table.csv").read_text() == "old"
    out = tool("make_table")(*runs, "--out", prefix, "--overwrite")
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["table.csv", "table.md"]   # no temporary left
    assert (tmp_path / "t" / "table.csv").read_text().startswith("method,")


def test_curves_against_labeled_boxes_and_selector_labels(runs, tmp_path):
    """Issue 17: curves against labeled boxes (rows' labeled_boxes, else counted from the states and
    the train split), and the selector / budget unit in the method label."""
    assert method_label({"acquisition": {"name": "entropy", "selector": {"name": "hybrid", "m": 4}}}) \
        == "Entropy + hybrid (m=4)"
    assert method_label({"acquisition": {"name": "entropy", "selector": {"name": "topk"}}}) == "Entropy"
    assert method_label({"acquisition": {"name": "margin"}, "al": {"budget_unit": "boxes"}}) \
        == "Margin sampling [budget in boxes]"
    boxed = []
    for seed, boxes in [(0, [15, 31, 52]), (1, [17, 33, 50])]:
        p = fake_run(tmp_path / f"kc{seed}", {"name": "entropy", "selector": {"name": "kcenter"}}, seed, [0.1, 0.2, 0.3])
        rows = [json.loads(line) for line in (p / "metrics.jsonl").read_text().splitlines()]
        (p / "metrics.jsonl").write_text("".join(json.dumps({**r, "labeled_boxes": b}) + "\n"
                                                 for r, b in zip(rows, boxes)))
        boxed.append(p)
    cs = curves(load_runs(boxed))
    assert cs["Entropy + kcenter"]["boxes"].tolist() == [16, 32, 51]
    fig = tmp_path / "boxes.png"
    out = tool("plot_curves")(*boxed, "--out", fig, "--x", "boxes")
    assert out.exit_code == 0, out.output
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # runs without labeled_boxes and without a readable train split: one line, and --x frames works
    out = tool("plot_curves")(*runs, "--out", fig, "--x", "boxes")
    assert out.exit_code == 1 and "labeled boxes unknown" in out.output and len(out.output.strip().splitlines()) == 1
    assert tool("plot_curves")(*runs, "--out", fig, "--x", "frames").exit_code == 0


def test_labeled_boxes_of_older_runs_come_from_states_and_the_split(tmp_path):
    import numpy as np

    from tiny_videos import write_split
    from vidal.report import labeled_boxes

    write_split(tmp_path / "train.h5", [5, 5], 0, "train")  # frame boxes: see tiny_videos
    p = fake_run(tmp_path / "old", {"name": "random_r"}, 0, [0.1, 0.2])
    cfg = {"al": {"initial": 10, "budget": 10, "cycles": 1}, "acquisition": {"name": "random_r"},
           "dataset": {"train": str(tmp_path / "train.h5")}}
    (p / "config.py").write_text(dump(cfg))
    from vidal.data import VideoDataset

    ds = VideoDataset(tmp_path / "train.h5")
    n = np.array([len(ds.ground_truth(i)["labels"]) for i in range(len(ds))])
    for c, frames in enumerate([[0, 6], [0, 6, 3]]):
        cycle_of = np.full(10, -1)
        cycle_of[frames] = 0
        np.savez(p / f"state_cycle_{c:03d}.npz", cycle_of=cycle_of)
    run = load_runs([p])[0]
    assert labeled_boxes(run) == [float(n[[0, 6]].sum()), float(n[[0, 6, 3]].sum())]


def test_class_balance_table_histograms_entropy_and_rare_class_ap(tmp_path):
    import math

    import numpy as np

    from tiny_videos import write_split
    from vidal.report import class_balance_markdown, class_balance_table, histogram_entropy, labeled_class_histogram

    write_split(tmp_path / "train.h5", [7, 7], 0, "train")  # video 0: bright (6 of 7 frames) + dark; video 1: bright
    runs = []
    for seed, frames in [(0, [0, 1, 7]), (1, [0, 8, 9])]:
        p = fake_run(tmp_path / f"r{seed}", {"name": "random_r"}, seed, [0.1])
        cfg = {"al": {"initial": 3, "budget": 1, "cycles": 0}, "acquisition": {"name": "random_r"},
               "dataset": {"train": str(tmp_path / "train.h5")}}
        (p / "config.py").write_text(dump(cfg))
        (p / "metrics.jsonl").write_text(json.dumps({"cycle": 0, "labeled": 3, "mAP": 0.1,
                                                     "AP": {"bright": 0.5, "dark": 0.2 + seed / 10}}) + "\n")
        cycle_of = np.full(14, -1)
        cycle_of[frames] = 0
        np.savez(p / "state_cycle_000.npz", cycle_of=cycle_of)
        runs.append(p)
    rs = load_runs(runs)
    assert labeled_class_histogram(rs[0]) == {"bright": 3, "dark": 2}  # frames 0, 1 (both classes), 7
    assert labeled_class_histogram(rs[1]) == {"bright": 3, "dark": 1}
    assert histogram_entropy({"a": 5, "b": 5}) == pytest.approx(math.log(2)) and histogram_entropy([4, 0]) == 0.0
    row, = class_balance_table(rs)
    assert row["rare_class"] == "dark" and row["boxes"]["dark"][0] == 1.5
    assert row["rare_AP"][0] == pytest.approx(0.25)
    assert row["entropy"][0] == pytest.approx((histogram_entropy([3, 2]) + histogram_entropy([3, 1])) / 2)
    md = class_balance_markdown([row])
    assert "| Random+R | 2 | 3 | 3.0 ± 0.0 | 1.5 ± 0.7 |" in md and "dark AP@0.5" in md


def test_curve_styles_differ_for_thirty_curves():
    from vidal.report import curve_style

    styles = [curve_style(k) for k in range(30)]
    assert len(set(styles)) == 30 and curve_style(0) == ("C0", "o", "-") and curve_style(10)[0] == "C0"
