"""Flow cache and flow tracker (vidal/tracking/flow_cache.py, flow.py, flow_methods.py,
evaluate.py, tools/compute_flow.py): exact propagation by known synthetic flows (centre and median
modes, chaining both ways, clipping, loss), cache fingerprint / resume / atomic write, and an end
to end run on a tiny generated dataset with ground-truth flow (EPE reported, DIS better than zero
flow, propagation IoU with flow better than the identity tracker)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from vidal.data.dataset import VideoDataset
from vidal.registry import TRACKERS
from vidal.tracking import FlowTracker, IdentityTracker
from vidal.tracking.evaluate import propagation_iou
from vidal.tracking.flow_cache import FlowCache, FlowCacheError, FlowCacheWriter, default_flow_path
from vidal.tracking.flow_methods import DISFlow, compute_flow_cache, invert_flow

REPO = Path(__file__).resolve().parents[1]
H, W = 48, 64


def write_video_file(path, lengths, *, h=H, w=W, frames=None, boxes=None):
    """A minimal vidal-video-v1 file: videos ``v0, v1, ...`` of the given lengths, grey frames
    (or ``frames[k]``), optional ``boxes[k]`` = (boxes [M,4], frame_index [M], track_ids [M])."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "vidal-video-v1"
        f.attrs["classes"] = ["thing"]
        f.attrs["fps"] = 10.0
        for k, n in enumerate(lengths):
            g = f.create_group(f"videos/v{k}")
            g["frames"] = frames[k] if frames is not None else np.full((n, h, w, 3), 128, np.uint8)
            b, fi, ids = boxes[k] if boxes is not None else (np.zeros((0, 4)), np.zeros(0), np.zeros(0))
            g["boxes"] = np.asarray(b, np.float32).reshape(-1, 4)
            g["frame_index"] = np.asarray(fi, np.int32)
            g["track_ids"] = np.asarray(ids, np.int32)
            m = len(g["frame_index"])
            g["labels"] = np.ones(m, np.int32)
            for key in ("visible_fraction", "truncation", "occlusion"):
                g[key] = np.zeros(m, np.float32)
            g.attrs.update(n_frames=n, height=h, width=w)
    return VideoDataset(path)


class FieldFlow:
    """A 'method' returning given flow fields: ``fields(t) -> (forward, backward)``."""

    name, batch_size, options = "field", 1, {}

    def __init__(self, fields):
        self.fields = fields


def make_cache(tmp_path, dataset, fields, name="x.flow.h5"):
    """Write a cache whose video 0 has ``fields[t] = (forward, backward)``; others zero."""
    out = tmp_path / name
    writer = FlowCacheWriter(out, dataset, method="field")
    for v, info in enumerate(dataset.videos):
        fwd, bwd = writer.begin_video(v)
        for t in range(info.n_frames - 1):
            f, b = fields(t) if v == 0 else (np.zeros((info.height, info.width, 2)),) * 2
            writer.write(fwd, t, f)
            writer.write(bwd, t, b)
        writer.end_video(v)
    return writer.finish()


def const(dx, dy, h=H, w=W):
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0], f[..., 1] = dx, dy
    return f


@pytest.fixture
def six(tmp_path):
    return write_video_file(tmp_path / "six.h5", [6, 2])


@pytest.mark.parametrize("mode", ["center", "median"])
def test_constant_translation_moves_boxes_exactly_and_chains_both_ways(tmp_path, six, mode):
    path = make_cache(tmp_path, six, lambda t: (const(1.25, -0.5), const(-1.25, 0.5)))
    tr = FlowTracker.for_dataset(six, flow=path, mode=mode)
    boxes = np.array([[10, 20, 20, 30], [30.5, 5, 40, 15.25]], np.float32)
    shift = np.array([1.25, -0.5, 1.25, -0.5], np.float32)
    np.testing.assert_allclose(tr.propagate(0, 1, boxes, 1), boxes + shift, atol=1e-5)
    np.testing.assert_allclose(tr.propagate(0, 1, boxes, 3), boxes + 3 * shift, atol=1e-5)
    np.testing.assert_allclose(tr.propagate(0, 4, boxes, -3), boxes - 3 * shift, atol=1e-5)
    np.testing.assert_allclose(tr.propagate(0, 5, boxes, -1), boxes - shift, atol=1e-5)
    assert tr.propagate(0, 1, boxes, 2).dtype == np.float32
    # the second video's flow is zero: boxes stay
    np.testing.assert_allclose(tr.propagate(1, 0, boxes, 1), boxes)
    with pytest.raises(ValueError, match="cannot go from frame"):
        tr.propagate(0, 4, boxes, 2)


def test_center_and_median_modes_differ_on_a_thin_moving_strip(tmp_path, six):
    f = np.zeros((H, W, 2), np.float32)
    f[:, 28:36, 0] = 4.0  # a thin vertical strip moves right; the rest is still
    path = make_cache(tmp_path, six, lambda t: (f, -f))
    box = np.array([[12, 10, 52, 30]], np.float32)  # centre x = 32, inside the strip
    centre = FlowTracker.for_dataset(six, flow=path, mode="center").propagate(0, 0, box, 1)
    median = FlowTracker.for_dataset(six, flow=path, mode="median").propagate(0, 0, box, 1)
    np.testing.assert_allclose(centre, box + [4, 0, 4, 0])
    np.testing.assert_allclose(median, box)  # 8 of 40 columns move: the median does not


def test_chaining_reads_the_flow_where_the_box_is_now(tmp_path, six):
    def fields(t):
        f = const(10.0, 0.0) if t == 0 else np.where(np.arange(W)[None, :, None] >= 32, const(5.0, 0.0), 0.0)
        return f.astype(np.float32), -f
    path = make_cache(tmp_path, six, fields)
    tr = FlowTracker.for_dataset(six, flow=path)
    box = np.array([[20, 10, 30, 20]], np.float32)  # centre 25 -> 35 after frame 0 -> +5 in frame 1
    np.testing.assert_allclose(tr.propagate(0, 0, box, 2), box + [15, 0, 15, 0])
    np.testing.assert_allclose(tr.propagate(0, 1, box, 1), box)  # centre 25 < 32: still in frame 1


def test_clipping_loss_nan_and_empty_inputs(tmp_path, six):
    path = make_cache(tmp_path, six, lambda t: (const(20.0, 0.0), const(-20.0, 0.0)))
    tr = FlowTracker.for_dataset(six, flow=path)
    boxes = np.array([[30, 5, 40, 15], [50, 5, 60, 15], [np.nan] * 4], np.float32)
    out = tr.propagate(0, 0, boxes, 1)
    np.testing.assert_allclose(out[0], [50, 5, 60, 15])
    assert np.isnan(out[1]).all()  # moved to x >= 70 > W: lost
    assert np.isnan(out[2]).all()
    np.testing.assert_allclose(tr.propagate(0, 0, np.array([[40, 5, 50, 15]]), 1), [[60, 5, W, 15]])
    assert tr.propagate(0, 0, np.zeros((0, 4)), 1).shape == (0, 4)


def test_registry_default_path_and_fingerprint_errors(tmp_path, six):
    assert TRACKERS.get("flow") is FlowTracker
    with pytest.raises(FlowCacheError, match="compute_flow.py"):
        FlowTracker.for_dataset(six)
    path = make_cache(tmp_path, six, lambda t: (const(1, 0), const(-1, 0)), name="six.flow.h5")
    assert path == default_flow_path(six.paths[0])
    assert FlowTracker.for_dataset(six).cache.path == path  # found next to the dataset
    other = write_video_file(tmp_path / "other.h5", [7, 2])  # same names, other frame count
    with pytest.raises(FlowCacheError, match="another dataset") as err:
        FlowTracker.for_dataset(other, flow=path)
    assert "\n" not in str(err.value)
    bogus = tmp_path / "bogus.h5"
    with h5py.File(bogus, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(FlowCacheError, match="vidal-flow-v1"):
        FlowCache(bogus)


def test_cache_is_atomic_resumable_and_plain_h5py(tmp_path, six):
    calls = []

    class Failing(DISFlow):
        def __call__(self, a, b):
            calls.append(1)
            if len(calls) == 6:  # video 0 has 5 pairs; fail on the first pair of video 1
                raise KeyboardInterrupt
            return np.broadcast_to(const(0.5, 0.25), a.shape[:3] + (2,)).copy()

    out = tmp_path / "r.flow.h5"
    with pytest.raises(KeyboardInterrupt):
        compute_flow_cache(six, out, Failing())
    assert not out.exists() and Path(str(out) + ".partial").exists()
    result = compute_flow_cache(six, out, Failing())
    assert result["resumed_videos"] == 1 and out.exists() and not Path(str(out) + ".partial").exists()
    with h5py.File(out, "r") as f:  # readable without vidal; stored at 1/4 size by default
        assert f.attrs["format"] == "vidal-flow-v2" and f.attrs["method"] == "dis" and f.attrs["downsample"] == 4
        assert f["videos/v0/forward"].shape == (5, H // 4, W // 4, 2) and f["videos/v0/forward"].dtype == np.float16
        np.testing.assert_allclose(f["videos/v1/backward"][0, 3, 4], [0.5, 0.25])


def test_invert_flow_of_a_translation_is_its_negation():
    np.testing.assert_allclose(invert_flow(const(2.5, -1.0)), const(-2.5, 1.0), atol=1e-5)


# --------------------------------------------------------------------------- end to end


def _run(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("flowgen")
    r = _run("tools/generate.py", "--preset", "synthia-al", "--scale", "0.002", "--resolution", "160x120",
             "--flow", "--no-datacard", "--quiet", "--workers", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out / "train.h5"


def load_tool(name):
    """The click command of tools/<name>.py (run in-process with CliRunner: no torch re-import)."""
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_compute_flow_reports_epe_and_flow_tracker_beats_identity(generated, tmp_path):
    compute_flow = load_tool("compute_flow")
    runner = CliRunner()
    r = runner.invoke(compute_flow, [str(generated), "--quiet"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    epe = json.loads(lines[0])
    assert lines[-1] == f"wrote {default_flow_path(generated)}"
    # DIS is far from exact on flat-shaded frames (textureless road), but beats the zero flow
    assert 0 < epe["epe_mean"] < 0.95 * epe["zero_epe_mean"]
    assert epe["epe_over_3px"] < epe["zero_epe_over_3px"]
    with h5py.File(default_flow_path(generated), "r") as f:
        assert f.attrs["epe_mean"] == pytest.approx(epe["epe_mean"])
    again = runner.invoke(compute_flow, [str(generated), "--quiet"])
    assert again.exit_code == 1 and again.output.startswith("Error:") and "--overwrite" in again.output

    gt = tmp_path / "gt.flow.h5"
    r = runner.invoke(compute_flow, [str(generated), "--method", "gt", "--out", str(gt), "--quiet",
                                     "--downsample", "1"])  # exact: stored at full resolution
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[0])["epe_mean"] < 0.01

    ds = VideoDataset(generated)
    ident = propagation_iou(IdentityTracker.for_dataset(ds), ds, deltas=(1, 3, -3))
    for flow, mode in ((None, "center"), (gt, "center"), (gt, "median")):
        res = propagation_iou(FlowTracker.for_dataset(ds, flow=flow, mode=mode), ds, deltas=(1, 3, -3))
        assert res["pairs"] == ident["pairs"] > 50
        assert res["mean_iou"] > ident["mean_iou"] + 0.05, (flow, mode)
        assert res["per_delta"][3]["mean_iou"] > ident["per_delta"][3]["mean_iou"]


def _read_in_child(tracker, queue):
    queue.put(tracker.propagate(0, 0, np.array([[10, 10, 20, 20]], np.float32), 2))


def test_flow_tracker_is_fork_and_pickle_safe(tmp_path, six):
    import multiprocessing as mp
    import pickle

    path = make_cache(tmp_path, six, lambda t: (const(1.0, 2.0), const(-1.0, -2.0)))
    tr = FlowTracker.for_dataset(six, flow=path)
    want = np.array([[12, 14, 22, 24]], np.float32)
    np.testing.assert_allclose(tr.propagate(0, 0, np.array([[10, 10, 20, 20]]), 2), want)  # parent opened it
    clone = pickle.loads(pickle.dumps(tr))
    np.testing.assert_allclose(clone.propagate(0, 1, np.array([[10, 10, 20, 20]]), 1), want - [1, 2, 1, 2])
    tr.clear_cache()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(tr, queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    np.testing.assert_allclose(got, want)
    assert tr.cache._pid != child.pid
