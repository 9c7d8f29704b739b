"""End-to-end tests of tools/train.py and tools/evaluate.py on a tiny generated dataset, as a user
runs them (subprocess), including their one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth.generate import generate_dataset
from vidal.data import VideoDataset
from vidal.training import FrameView, evaluate_frames, spread_indices

REPO = Path(__file__).resolve().parents[1]
TINY = ["detector.height=48", "detector.fpn_channels=16", "detector.box_head_dim=32", "schedule.epochs=2",
        "schedule.milestones=(1,)", "schedule.warmup_iters=2", "schedule.batch_size=4"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with a tiny dataset and a config composed from the shipped _base_ files."""
    root = tmp_path_factory.mktemp("proj")
    generate_dataset(preset="synthia-al", out=root / "data", scale=0.0005, resolution="96x72", seed=3, workers=1,
                     progress=False, datacard=False)
    (root / "exp.py").write_text(
        f"_base_ = ['{REPO}/configs/_base_/detectors/frcnn-effl0-fpn_cpu.py', "
        f"'{REPO}/configs/_base_/schedules/cpu-mini.py']\n"
        "dataset = dict(train='data/train.h5', test='data/test.h5')\n")
    return root


def test_train_then_evaluate(project):
    r = run(str(REPO / "tools/train.py"), "exp.py", "--work-dir", "wd", "--eval-every", "1", "--eval-max-frames", "10",
            "--quiet", "--cfg-options", *TINY, cwd=project)
    assert r.returncode == 0, r.stderr
    wd = project / "wd"
    rows = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert rows[1]["train_minutes"] > rows[0]["train_minutes"] > 0
    assert all(row["num_frames"] == 10 and "mAP50" in row and "AP50" in row for row in rows)
    assert (wd / "final.pth").is_file() and (wd / "latest.pth").is_file()
    assert "fpn_channels': 16" in (wd / "config.py").read_text()
    prov = json.loads((wd / "provenance.json").read_text())
    assert prov["versions"]["torch"] and "tools/train.py" in prov["command"]
    assert "wrote" in r.stdout

    # the README's training-curve figure, from rows as train.py writes them (the tiny run's 10 test
    # frames may hold no object, so its mAP can be null: such rows are skipped)
    curve = project / "curve"
    curve.mkdir()
    (curve / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"epoch": 1, "train_minutes": 2.8, "mAP50": 0.11, "mAP50_all_scores": 0.22},
        {"epoch": 2, "train_minutes": 5.6, "mAP50": None, "mAP50_all_scores": None},
        {"epoch": 3, "train_minutes": 8.4, "mAP50": 0.40, "mAP50_all_scores": 0.53}]))
    for metric in ("both", "voc", "thesis"):
        r = run(str(REPO / "tools/plot_training.py"), "curve", "--labels", "ImageNet", "--out", f"curve_{metric}.png",
                "--target", "0.5", "--budget-minutes", "10", "--metric", metric, cwd=project)
        assert r.returncode == 0, r.stderr
        assert (project / f"curve_{metric}.png").read_bytes()[:4] == b"\x89PNG"
    r = run(str(REPO / "tools/plot_training.py"), "data", "--out", "x.png", cwd=project)
    assert r.returncode != 0 and "metrics.jsonl: not found" in r.stderr + r.stdout
    assert len((r.stderr + r.stdout).strip().splitlines()) == 1

    r = run(str(REPO / "tools/evaluate.py"), "exp.py", "wd/final.pth", "--coco", "--quiet", cwd=project)
    assert r.returncode == 0, r.stderr
    m = json.loads((wd / "metrics_test.json").read_text())
    n_test = len(VideoDataset(project / "data/test.h5"))
    assert m["num_frames"] == n_test and set(m["AP50"]) == {"pedestrian", "cyclist", "car", "wheelchair"}
    assert "AP" in m["coco"] and m["checkpoint"] == "wd/final.pth"


def test_errors_before_training(project):
    r = run(str(REPO / "tools/train.py"), "exp.py", "--work-dir", "wd2", "--cfg-options", "schedule.lrr=1", cwd=project)
    assert r.returncode != 0 and "schedule: unknown key(s) lrr" in r.stderr and "Traceback" not in r.stderr
    r = run(str(REPO / "tools/train.py"), "exp.py", "--work-dir", "wd2", "schedule.lr=1", cwd=project)
    assert r.returncode != 0 and "overrides go after --cfg-options" in r.stderr
    (project / "gone.py").write_text("dataset = dict(train='none.h5', test='none.h5', generate='make it')\n"
                                     "detector = dict(profile='cpu')\n")
    r = run(str(REPO / "tools/train.py"), "gone.py", "--work-dir", "wd2", cwd=project)
    assert "none.h5 does not exist; make it with: make it" in r.stderr and "Traceback" not in r.stderr
    assert not (project / "wd2").exists()
    (project / "junk.pth").write_bytes(b"junk")
    r = run(str(REPO / "tools/evaluate.py"), "exp.py", "junk.pth", cwd=project)
    assert r.returncode != 0 and "junk.pth" in r.stderr and "Traceback" not in r.stderr


def test_frame_view_and_spread(project):
    ds = VideoDataset(project / "data/train.h5")
    view = FrameView(ds, [3, 1])
    assert len(view) == 2 and view[0]["index"] == 3 and view[1:][0]["index"] == 1
    assert spread_indices(10, None) is None and spread_indices(10, 20) is None
    assert list(spread_indices(10, 3)) == [0, 4, 9] or list(spread_indices(10, 3)) == [0, 5, 9]
    with pytest.raises(ValueError):
        spread_indices(10, 0)


def test_evaluate_frames_perfect_and_empty(project):
    from vidal.detection.base import Predictions

    ds = VideoDataset(project / "data/train.h5")
    idx = list(range(len(ds)))
    assert sum(len(ds.ground_truth(i)["boxes"]) for i in idx) > 0
    perfect = []
    for i in idx:
        gt = ds.ground_truth(i)
        n = len(gt["boxes"])
        probs = np.zeros((n, ds.num_classes + 1), np.float32)
        probs[np.arange(n), gt["labels"]] = 1
        perfect.append(Predictions(gt["boxes"], np.ones(n), gt["labels"], probs))
    m = evaluate_frames(ds, perfect, idx)
    assert m["mAP50"] == pytest.approx(1.0)
    empty = [Predictions.empty(ds.num_classes) for _ in idx]
    assert evaluate_frames(ds, empty, idx)["mAP50"] == 0.0
