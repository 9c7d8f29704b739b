"""Temporal coherence on a generated dataset: a simulated weak detector (ground truth with dropped
boxes, jitter, duplicates and spurious boxes) and a ground-truth-track tracker give estimated FPs
far above the FP base rate and positively rank-correlated per-frame counts; and
tools/estimate_errors.py end to end with a tiny saved detector (identity tracker): errors.json
fields, an overlay PNG, one-line errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from synth.generate import generate_dataset
from vidal.acquisition.temporal_coherence import estimate_errors, evaluate_estimates
from vidal.boxes import box_iou
from vidal.data import VideoDataset
from vidal.tracking.identity import IdentityTracker
from sim_detections import simulate_detections

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("tc") / "data"
    generate_dataset(preset="synthia-al", out=out, scale=0.005, resolution="160x120", seed=1, workers=1,
                     progress=False, datacard=False)
    return out


class GTTrackTracker:
    """Test double: a box that overlaps a ground-truth box (IoU >= 0.3) follows that object's track
    (same offset to it), and is lost (NaN) where the track ends; any other box stays in place."""

    name = "gt_tracks"

    def __init__(self, dataset):
        self.ds = dataset

    def propagate(self, video, frame, boxes, delta):
        g0 = self.ds.ground_truth(self.ds.index_of(video, frame))
        g1 = self.ds.ground_truth(self.ds.index_of(video, frame + delta))
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        out = b.copy()
        if len(b) and len(g0["boxes"]):
            iou = box_iou(b, g0["boxes"])
            best = iou.argmax(axis=1)
            for k in np.flatnonzero(iou.max(axis=1) >= 0.3):
                m = np.flatnonzero(g1["track_ids"] == g0["track_ids"][best[k]])
                out[k] = b[k] + (g1["boxes"][m[0]] - g0["boxes"][best[k]]) if len(m) else np.nan
        return out


def test_estimates_track_real_errors_of_a_weak_detector(generated):
    ds = VideoDataset(generated / "train.h5", with_frames=False)
    preds = simulate_detections(ds)
    res = estimate_errors(ds, preds, GTTrackTracker(ds))
    m = evaluate_estimates(res, ds.ground_truth, preds, np.arange(len(ds)))
    assert m["detections"] > 100 and m["real_fp"] > 20  # enough to measure
    assert m["fp_precision"] > 1.5 * m["fp_base_rate"] and m["fp_precision"] > 0.8
    assert m["fp_recall"] > 0.5
    assert m["spearman_fp"] > 0.5 and m["spearman_fn"] > 0.3
    assert m["fn_precision"] > 2 * m["miss_base_rate"]
    # the identity tracker still beats the base rate on these slow-moving small objects
    mi = evaluate_estimates(estimate_errors(ds, preds, IdentityTracker([v.n_frames for v in ds.videos])),
                            ds.ground_truth, preds, np.arange(len(ds)))
    assert mi["fp_precision"] > mi["fp_base_rate"] and mi["spearman_fp"] > 0


# ----------------------------------------------------------------------------- the tool


def _load_tool():
    spec = importlib.util.spec_from_file_location("estimate_errors_tool", REPO / "tools" / "estimate_errors.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tool_setup(generated, tmp_path_factory):
    import torch

    from vidal.detection import FasterRCNNDetector, profile

    tmp = tmp_path_factory.mktemp("tool")
    classes = VideoDataset(generated / "test.h5", with_frames=False).classes
    torch.manual_seed(0)
    det = FasterRCNNDetector(class_names=classes, config=profile(
        "cpu", backbone="mobilenet_v3_fpn", height=64, box_score_thresh=0.0, box_detections_per_img=8,
        device="cpu", predict_batch_size=4))
    ckpt = tmp / "det.pth"
    det.save(ckpt)
    cfg = tmp / "tc_identity_tiny.py"
    # random weights score ~1/(C+1): let every detection into the graph
    cfg.write_text(f"dataset = dict(train={str(generated / 'train.h5')!r}, test={str(generated / 'test.h5')!r})\n"
                   f"tracker = dict(name='identity')\n"
                   f"temporal_coherence = dict(score_threshold=0.0, window=2)\n")
    return tmp, cfg, ckpt


def test_tool_end_to_end(tool_setup):
    tmp, cfg, ckpt = tool_setup
    out = tmp / "out"
    r = subprocess.run([sys.executable, str(REPO / "tools/estimate_errors.py"), str(cfg), str(ckpt),
                        "--tracker", "identity", "--max-frames", "10", "--overlays", "2", "--out", str(out),
                        "--threads", "2", "--quiet", "--cfg-options", "temporal_coherence.pairwise=1.0"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out / 'errors.json'}" in r.stdout
    rep = json.loads((out / "errors.json").read_text())
    assert rep["frames"] == 10 and rep["tracker"] == {"name": "identity"} and rep["split"] == "test"
    assert rep["temporal_coherence"]["window"] == 2 and rep["temporal_coherence"]["score_threshold"] == 0.0
    assert rep["graph"]["detections"] > 0 and rep["seconds"]["predict"] > 0
    m = rep["metrics"]
    for key in ("fp_precision", "fp_recall", "fp_base_rate", "fn_precision", "fn_recall", "spearman_fp",
                "spearman_fn", "real_fp", "est_fp", "est_fn", "gt_missed"):
        assert key in m
    assert m["detections"] == rep["graph"]["detections"] and m["est_fp"] == rep["graph"]["est_fp"]
    pf = rep["per_frame"]
    assert len(pf["index"]) == 10 and sum(pf["est_fp"]) == m["est_fp"] and sum(pf["real_fp"]) == m["real_fp"]
    assert 1 <= len(rep["overlays"]) <= 2
    img = cv2.imread(rep["overlays"][0])
    assert img is not None and img.shape[0] > 120 and img.shape[2] == 3


def test_tool_errors_are_one_line(tool_setup):
    tmp, cfg, ckpt = tool_setup
    tool = _load_tool()
    runner = CliRunner()
    r = runner.invoke(tool.main, [str(cfg), str(ckpt), "--tracker", "nope", "--out", str(tmp / "x")])
    assert r.exit_code != 0 and "valid names" in r.output and "identity" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(tool.main, [str(cfg), str(ckpt), "--cfg-options", "temporal_coherence.link_iou=1.5"])
    assert r.exit_code != 0 and "link_iou" in r.output and str(cfg) in r.output
    bad = tmp / "bad.py"
    bad.write_text(cfg.read_text() + "temporal_coherence = dict(windw=3)\n")
    r = runner.invoke(tool.main, [str(bad), str(ckpt)])
    assert r.exit_code != 0 and "windw" in r.output and "valid: window" in r.output
    r = runner.invoke(tool.main, [str(cfg), str(tmp / "missing.pth"), "--out", str(tmp / "y")])
    assert r.exit_code != 0 and "missing.pth" in r.output and len(r.output.strip().splitlines()) == 1
