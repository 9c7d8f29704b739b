"""Nothing executes on load (vidal/weights.py, pool predictions as arrays).

Files crafted as an attacker would (unpickling them creates a marker file) are fed to every tool
that accepts them, as a user runs the tools (subprocess): detector weights and ImageNet backbone
weights to tools/train.py and tools/run_al.py, a detector checkpoint to tools/evaluate.py and
tools/estimate_errors.py, SiamFC weights to tools/estimate_errors.py and tools/eval_tracker.py,
PWC-Net / RAFT weights to tools/compute_flow.py, a work dir holding a crafted checkpoint or
crafted pool predictions to tools/run_al.py --resume, and a run folder whose config snapshot is
code to tools/make_table.py and tools/plot_curves.py. Each must fail with exit code != 0, a last
stderr line naming the file, no traceback, and no marker. The pool predictions round-trip bit for
bit, and a selection made from predictions read back from disk equals the one made in memory.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny_videos import CLASSES, tiny_experiment_config, write_split
from vidal.detection.base import Predictions, predictions_from_arrays, predictions_to_arrays
from vidal.weights import WeightsError, plain, read_torch_file

REPO = Path(__file__).resolve().parents[1]


class RunsCode:
    """Unpickling this calls ``open(marker, "w")``: it creates ``marker``, as a payload would."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A ``vidal-detector-v1`` checkpoint in every respect but one object in its config."""
    torch.save({"format": "vidal-detector-v1", "backend": "torchvision_frcnn", "backbone": "mobilenet_v3_fpn",
                "num_classes": len(CLASSES), "class_names": CLASSES, "config": {"height": 64, "x": RunsCode(marker)},
                "state_dict": {"w": torch.zeros(2)}, "torch": "2.0"}, path)
    return path


def crafted_weights(path: Path, marker: Path) -> Path:
    """A state dict wrapped as checkpoints of training frameworks are, with a payload in its meta."""
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": {"note": RunsCode(marker)}}, path)
    return path


def run(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def refused(r: subprocess.CompletedProcess, path: Path, marker: Path) -> str:
    """Assert the one-line refusal naming ``path``, and that nothing ran; the last stderr line."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert lines and str(path) in lines[-1], r.stderr
    assert not marker.exists(), f"{marker} was created: loading {path} ran code"
    return lines[-1]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Tiny train / test splits, a tiny entropy AL config (one selection) and a real checkpoint."""
    root = tmp_path_factory.mktemp("safe")
    write_split(root / "train.h5", [6, 10, 14, 12], 0, "train")
    write_split(root / "test.h5", [6, 6], 1, "test")
    (root / "al.py").write_text(f"""
{tiny_experiment_config(root)}evaluation = dict(score_threshold=0.05, nms_iou=0.5)
al = dict(initial=4, budget=3, cycles=1, k=1, per_video=True, train_from="previous", reference=False)
acquisition = dict(name="entropy")
""")
    (root / "siamfc.py").write_text(f"""
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
tracker = dict(name="siamfc", weights="{root}/evil_siamfc.pth")
""")
    from vidal.build import build_detector
    from vidal.config import load_config

    build_detector(load_config(root / "al.py"), CLASSES).save(root / "good.pt")
    return root


# --------------------------------------------------------------------------- the payloads are real


def test_the_crafted_files_would_run_code_if_unpickled(tmp_path):
    m1, m2 = tmp_path / "m1", tmp_path / "m2"
    pickle.loads(pickle.dumps(RunsCode(m1)))
    torch.load(crafted_checkpoint(tmp_path / "c.pt", m2), weights_only=False)
    assert m1.exists() and m2.exists()


def test_reader_refuses_in_one_line_and_reads_old_and_new_checkpoints(tmp_path, project):
    marker = tmp_path / "marker"
    cases = {"crafted": crafted_weights(tmp_path / "crafted.pth", marker), "absent": tmp_path / "absent.pth"}
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    (tmp_path / "truncated.pth").write_bytes(good.read_bytes()[:600])
    (tmp_path / "empty.pth").write_bytes(b"")
    raw = tmp_path / "raw.pkl"  # a plain pickle, not a torch file
    raw.write_bytes(pickle.dumps({"x": RunsCode(marker)}, protocol=2))
    for name in ("junk.pth", "truncated.pth", "empty.pth", "raw.pkl"):
        cases[name] = tmp_path / name
    for what, path in cases.items():
        with pytest.raises(WeightsError) as e:
            read_torch_file(path, "SiamFC weights")
        msg = str(e.value)
        assert msg.startswith(f"{path}: ") and "\n" not in msg, (what, msg)
    assert "refused" in str(pytest.raises(WeightsError, read_torch_file, cases["crafted"]).value)
    assert not marker.exists()
    # vidal's checkpoints hold only plain values: a bare weights_only load reads them, no allowlist
    ckpt = torch.load(project / "good.pt", weights_only=True)
    assert ckpt["format"] == "vidal-detector-v1" and type(ckpt["torch"]) is str
    assert ckpt["config"]["fpn_strides"] == (4, 8, 16, 32)
    # a checkpoint written before (torch.__version__ stored as TorchVersion) still loads
    old = dict(ckpt, torch=torch.__version__)
    torch.save(old, tmp_path / "old.pt")
    from vidal.detection import load_detector

    assert load_detector(tmp_path / "old.pt").class_names == CLASSES
    with pytest.raises(TypeError, match=r"checkpoint.config.x: a RunsCode cannot be stored"):
        plain({"config": {"x": RunsCode(marker)}})


# --------------------------------------------------------------------------- tools


def test_train_refuses_crafted_detector_and_backbone_weights(project, tmp_path):
    marker = tmp_path / "marker"
    weights = crafted_weights(tmp_path / "coco.pth", marker)
    for extra in ([f"detector.weights={str(weights)!r}"],
                  ['detector.backbone="efficientnet_lite0_fpn"', f"detector.backbone_weights={str(weights)!r}"]):
        r = run(REPO / "tools/train.py", "al.py", "--work-dir", tmp_path / "wd", "--quiet", "--cfg-options", *extra,
                cwd=project)
        assert "refused" in refused(r, weights, marker)
    r = run(REPO / "tools/run_al.py", "al.py", "--work-dir", tmp_path / "al", "--quiet", "--cfg-options",
            f"detector.weights={str(weights)!r}", cwd=project)
    refused(r, weights, marker)


def test_evaluate_and_estimate_errors_refuse_a_crafted_checkpoint(project, tmp_path):
    marker = tmp_path / "marker"
    ckpt = crafted_checkpoint(tmp_path / "model.pt", marker)
    r = run(REPO / "tools/evaluate.py", "al.py", ckpt, "--quiet", cwd=project)
    assert "retrain" in refused(r, ckpt, marker)
    r = run(REPO / "tools/estimate_errors.py", "al.py", ckpt, "--tracker", "identity", "--out", tmp_path / "out",
            "--quiet", cwd=project)
    refused(r, ckpt, marker)


def test_tracker_and_flow_tools_refuse_crafted_siamfc_pwcnet_raft_weights(project, tmp_path):
    marker = tmp_path / "marker"
    siamfc = crafted_weights(project / "evil_siamfc.pth", marker)  # named by siamfc.py's tracker section
    r = run(REPO / "tools/estimate_errors.py", "siamfc.py", project / "good.pt", "--out", tmp_path / "out",
            "--quiet", cwd=project)
    refused(r, siamfc, marker)
    r = run(REPO / "tools/eval_tracker.py", "test.h5", "--tracker", "siamfc", "--siamfc-weights", siamfc, cwd=project)
    refused(r, siamfc, marker)
    flow = crafted_weights(tmp_path / "network-default.pytorch", marker)
    for method in ("pwcnet", "raft"):
        r = run(REPO / "tools/compute_flow.py", "test.h5", "--method", method, "--weights", flow,
                "--out", tmp_path / f"{method}.flow.h5", "--quiet", cwd=project)
        refused(r, flow, marker)
        assert not (tmp_path / f"{method}.flow.h5").exists()


# --------------------------------------------------------------------------- run_al.py --resume


def _run_until_stall(cmd: list, cwd: Path, name: str, timeout: float = 600) -> str:
    """Run ``cmd`` with the test hook stopping it after writing ``name.tmp``; kill it there."""
    env = {**os.environ, "VIDAL_STALL_WRITE": name}
    proc = subprocess.Popen([sys.executable, *map(str, cmd)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen, t0 = [], time.time()
    try:
        for line in proc.stdout:
            seen.append(line)
            if f"STALL {name}" in line:
                break
            assert time.time() - t0 < timeout, "".join(seen)
        else:
            pytest.fail(f"run ended before writing {name}:\n{''.join(seen)}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return "".join(seen)


def _al_cmd(work: Path, *extra) -> list:
    return [REPO / "tools/run_al.py", "al.py", "--work-dir", work, "--seed", "0", "--threads", "1", "--quiet", *extra]


@pytest.fixture(scope="module")
def stalled(project, tmp_path_factory) -> Path:
    """A work dir stopped in cycle 0's acquisition: model, evaluation and pool predictions written,
    the selection only as ``selection.npz.tmp`` (computed from the predictions in memory)."""
    work = tmp_path_factory.mktemp("stalled") / "work"
    _run_until_stall(_al_cmd(work), project, "selection.npz")
    d = work / "cycle_000"
    assert (d / "pool_predictions.npz").is_file() and (d / "selection.npz.tmp").is_file()
    assert not list(d.glob("*.pkl"))
    return work


def _copy(stalled: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(stalled, work)
    (work / "cycle_000" / "selection.npz.tmp").unlink()
    return work


def test_pool_predictions_read_back_select_the_same_frames(project, stalled, tmp_path):
    work = _copy(stalled, tmp_path)
    with np.load(work / "cycle_000" / "pool_predictions.npz", allow_pickle=False) as z:
        assert {"offsets", "boxes", "scores", "labels", "probs", "time_s", "format"} <= set(z.files)
        assert len(z["offsets"]) == 42 + 1
    log = _run_until_stall(_al_cmd(work, "--resume"), project, "selection.npz")
    assert "predict on the pool" not in log  # read from the file
    with np.load(stalled / "cycle_000" / "selection.npz.tmp") as a, \
            np.load(work / "cycle_000" / "selection.npz.tmp") as b:
        for k in ("candidates", "scores", "selected"):
            np.testing.assert_array_equal(a[k], b[k])


def test_resume_refuses_crafted_pool_predictions_and_checkpoint(project, stalled, tmp_path):
    marker = tmp_path / "marker"
    work = _copy(stalled, tmp_path)
    path = work / "cycle_000" / "pool_predictions.npz"
    # 1. a pickle under the new name
    path.write_bytes(pickle.dumps({"predictions": RunsCode(marker), "time_s": 1.0}))
    r = run(*_al_cmd(work, "--resume"), cwd=project)
    assert "delete it and resume" in refused(r, path, marker)
    # 2. an npz whose arrays are fine but one: an object array (pickled inside the npz)
    with np.load(stalled / "cycle_000" / "pool_predictions.npz") as z:
        arrays = dict(z)
    arrays["boxes"] = np.array([RunsCode(marker)], dtype=object)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    r = run(*_al_cmd(work, "--resume"), cwd=project)
    refused(r, path, marker)
    # 3. a crafted checkpoint in the work dir (loaded before the predictions)
    shutil.copy(stalled / "cycle_000" / "pool_predictions.npz", path)
    model = crafted_checkpoint(work / "cycle_000" / "model.pt", marker)
    r = run(*_al_cmd(work, "--resume"), cwd=project)
    refused(r, model, marker)


def test_left_over_pkl_is_never_read(project, stalled, tmp_path):
    marker = tmp_path / "marker"
    work = _copy(stalled, tmp_path)
    (work / "cycle_000" / "pool_predictions.npz").unlink()
    (work / "cycle_000" / "pool_predictions.pkl").write_bytes(pickle.dumps({"predictions": RunsCode(marker)}))
    log = _run_until_stall(_al_cmd(work, "--resume"), project, "selection.npz")
    assert "predict on the pool" in log and (work / "cycle_000" / "pool_predictions.npz").is_file()
    assert not marker.exists()


def test_report_tools_read_config_snapshots_without_running_them(project, tmp_path):
    from vidal.config import dump, load_config, read_snapshot

    cfg = load_config(project / "al.py")
    (tmp_path / "snap.py").write_text(dump(cfg))
    assert read_snapshot(tmp_path / "snap.py") == load_config(tmp_path / "snap.py")
    assert {k: v for k, v in read_snapshot(tmp_path / "snap.py").items() if k != "_config_path_"} == \
        {k: v for k, v in cfg.items() if k != "_config_path_"}
    marker = tmp_path / "marker"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"cycle": 0, "labeled": 4, "mAP": 0.1}\n')
    (run_dir / "config.py").write_text(dump(cfg) + f"x = open({str(marker)!r}, 'w')\n")
    for tool in ("make_table.py", "plot_curves.py"):
        args = ["--out", tmp_path / "out.png"] if tool == "plot_curves.py" else []
        r = run(REPO / "tools" / tool, run_dir, *args, cwd=project)
        assert "never executed" in refused(r, run_dir / "config.py", marker)


# --------------------------------------------------------------------------- round trip


def test_predictions_round_trip_bit_for_bit(tmp_path):
    from vidal.workdir import read_pool_predictions, write_pool_predictions

    rng = np.random.default_rng(0)
    preds = [Predictions.empty(3)]
    for n in (2, 0, 5, 1):
        probs = rng.dirichlet(np.ones(4), n).astype(np.float32)
        labels = rng.integers(1, 4, n)
        preds.append(Predictions(rng.random((n, 4)) * 90, probs[np.arange(n), labels], labels, probs))
    preds.append(Predictions.empty(3))
    for p in (preds, [], [Predictions.empty(2)]):
        write_pool_predictions(tmp_path / "p.npz", p, 1.25)
        back, t = read_pool_predictions(tmp_path / "p.npz", len(p))
        assert t == 1.25 and len(back) == len(p)
        for a, b in zip(p, back):
            for k in ("boxes", "scores", "labels", "probs"):
                x, y = getattr(a, k), getattr(b, k)
                assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    arrays = predictions_to_arrays(preds)
    assert arrays["offsets"].tolist() == [0, 0, 2, 2, 7, 8, 8] and arrays["probs"].shape == (8, 4)
    with pytest.raises(ValueError, match="offsets"):
        predictions_from_arrays({**arrays, "offsets": arrays["offsets"][:-2]})
    with pytest.raises(ValueError, match="different class counts"):
        predictions_to_arrays([Predictions.empty(2), Predictions.empty(3)])
