"""tools/show_selection.py (issue 16): the montage of a TC run's selection shows the per-box
estimated false positives / negatives in the thesis Fig. 2.3 colours, and a human run's job shows
its pre-annotations; a work dir without a selection is a one-line error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

import vidal.acquisition  # noqa: F401 - registers the acquisitions
from double_detector import registered
from human_helpers import make_pool, recording_backend
from tiny_videos import write_split
from vidal.config import load_config
from vidal.loop import Experiment
from vidal.montage import show_selection
from vidal.viz import COLORS

REPO = Path(__file__).resolve().parents[1]


def _has_colour(png: Path, rgb) -> int:
    img = cv2.imread(str(png))[:, :, ::-1].astype(int)
    return int((np.abs(img - np.array(rgb)).sum(2) <= 6).sum())


def test_tc_selection_montage(tmp_path):
    write_split(tmp_path / "train.h5", [10, 12, 14], 0, "train")
    write_split(tmp_path / "test.h5", [6], 1, "test")
    (tmp_path / "tc.py").write_text(f"""
dataset = dict(train="{tmp_path}/train.h5", test="{tmp_path}/test.h5")
detector = dict(backend="double", datasets=("{tmp_path}/train.h5", "{tmp_path}/test.h5"), spurious=1.5)
schedule = dict(epochs=1, lr=0.01, batch_size=4)
evaluation = dict(score_threshold=0.05, nms_iou=0.5)
al = dict(initial=3, budget=4, cycles=1, k=1, per_video=True)
acquisition = dict(name="temporal_coherence", score_threshold=0.05)
tracker = dict(name="identity")
""")
    work = tmp_path / "run"
    with registered():
        Experiment(load_config(tmp_path / "tc.py"), work, 0, progress=False, threads=1, echo=lambda s: None).run()
        s = show_selection(work, tmp_path / "tc.png")
    assert s["cycle"] == 1 and s["frames"] == 4 and s["tc_boxes"]
    sel = np.load(work / "cycle_000" / "selection.npz")
    pos = np.searchsorted(sel["candidates"], sel["selected"])
    assert sel["log_est_fp"][pos].sum() > 0  # the scripted detector's spurious boxes
    png = tmp_path / "tc.png"
    assert _has_colour(png, COLORS["fp"]) > 50 and _has_colour(png, COLORS["det"]) > 50
    assert _has_colour(png, COLORS["gt"]) > 50  # the simulated run's ground truth


def test_human_job_montage_and_errors(tmp_path):
    config = make_pool(tmp_path, cold_start="acquisition")
    work = tmp_path / "run"
    with recording_backend():
        Experiment(load_config(config), work, 0, progress=False, threads=1, echo=lambda s: None).run()
    import importlib.util

    spec = importlib.util.spec_from_file_location("show_selection", REPO / "tools/show_selection.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    r = CliRunner().invoke(mod.main, [str(work), "--out", str(tmp_path / "job0.png")])
    assert r.exit_code == 0 and "cycle 0: 4 frames from" in r.output, r.output
    assert _has_colour(tmp_path / "job0.png", COLORS["det"]) > 50
    # once labelled, the imported boxes are drawn in yellow too (before: only the legend swatches)
    from test_human_oracle import _coco_file
    from vidal.data import VideoDataset
    from vidal.human import import_labels, read_job

    before = _has_colour(tmp_path / "job0.png", COLORS["gt"])
    _coco_file(tmp_path / "l.json", VideoDataset(tmp_path / "train.h5"), read_job(work, 0))
    import_labels(work, tmp_path / "l.json", "coco")
    show_selection(work, tmp_path / "job0b.png", 0)
    assert _has_colour(tmp_path / "job0b.png", COLORS["gt"]) > before + 200
    r = CliRunner().invoke(mod.main, [str(work), "--cycle", "3", "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
