"""Tracking costs and accuracy: flow computation frames/s per method, SiamFC re-tracking time per
1,000 frames, and box-propagation IoU per tracker. Prints JSON lines.

    python benchmarks/bench_flow.py                                   # generates a small dataset with GT flow
    python benchmarks/bench_flow.py --dataset data/x/train.h5 --siamfc-weights work/siamfc.pth --device cuda

- ``flow_fps``: frame pairs per second of one flow direction (DIS; RAFT-small and PWC-Net with
  random weights — speed does not depend on the weights) at the dataset's resolution.
- ``siamfc_time``: seconds to re-track the ground-truth boxes of a frame (standing in for the
  detections) to ``±1..±n`` (2n SiamFC steps, batched per frame), scaled to 1,000 frames.
- ``propagation_iou`` per tracker (identity, flow from DIS, flow from the ground-truth flow,
  SiamFC when weights are given) on the dataset's tracks (vidal/tracking/evaluate.py).

The functions are importable by other benchmarks (``from benchmarks.bench_flow import flow_fps``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

from vidal.data.dataset import VideoDataset
from vidal.tracking.evaluate import propagation_iou
from vidal.tracking.flow import FlowTracker
from vidal.tracking.flow_methods import GroundTruthFlow, build_flow_method, compute_flow_cache
from vidal.tracking.identity import IdentityTracker
from vidal.tracking.siamfc import SiamFCTracker

REPO = Path(__file__).resolve().parents[1]


def _pairs(dataset, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` (video, t) frame pairs spread over the dataset."""
    all_pairs = [(v, t) for v, info in enumerate(dataset.videos) for t in range(info.n_frames - 1)]
    if len(all_pairs) <= n:
        return all_pairs
    idx = np.linspace(0, len(all_pairs) - 1, n).round().astype(int)
    return [all_pairs[i] for i in idx]


def flow_fps(dataset, method: str, *, pairs: int = 20, weights=None, device: str = "cpu", warmup: int = 1,
             **options) -> dict:
    """Frame pairs per second (one direction) of flow ``method`` on ``pairs`` pairs of ``dataset``
    (images decoded beforehand, not timed), wall clock and process CPU time (the CPU time is the
    robust figure on a shared machine; with one thread it is the uncontended wall time). RAFT / PWC-Net run with random weights unless
    ``weights`` is given."""
    if method in ("raft", "pwcnet") and weights is None:
        options["allow_random"] = True
    m = build_flow_method(method, weights=weights, device=device, **options)
    frames = [(dataset.image(dataset.index_of(v, t)), dataset.image(dataset.index_of(v, t + 1)))
              for v, t in _pairs(dataset, pairs + warmup)]
    for a, b in frames[:warmup]:
        m(a[None], b[None])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for a, b in frames[warmup:]:
        m(a[None], b[None])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(frames) - warmup
    info = dataset.videos[0]
    return {"bench": "flow_fps", "method": method, **{k: v for k, v in options.items() if k != "allow_random"},
            "resolution": f"{info.width}x{info.height}", "device": device, "pairs": n,
            "pairs_per_s": round(n / seconds, 2), "ms_per_pair": round(1000 * seconds / n, 2),
            "cpu_ms_per_pair": round(1000 * cpu / n, 2)}


def siamfc_time(dataset, *, weights=None, n: int = 3, frames: int = 10, device: str = "cpu") -> dict:
    """Seconds per 1,000 frames to re-track each frame's ground-truth boxes to ``±1..±n`` with
    SiamFC (random weights unless ``weights``; the cost does not depend on them)."""
    tracker = SiamFCTracker.for_dataset(dataset, weights=weights, device=device, allow_random=weights is None)
    cand = [(v, t) for v, info in enumerate(dataset.videos) for t in range(n, info.n_frames - n)
            if len(dataset.ground_truth(dataset.index_of(v, t))["boxes"])]
    if not cand:
        raise ValueError(f"no frame with boxes and {n} frames either side")
    pick = [cand[i] for i in np.linspace(0, len(cand) - 1, min(frames, len(cand))).round().astype(int)]
    boxes_total, start, cpu = 0, time.perf_counter(), time.process_time()
    for v, t in pick:
        boxes = dataset.ground_truth(dataset.index_of(v, t))["boxes"]
        boxes_total += len(boxes)
        for d in list(range(1, n + 1)) + list(range(-1, -n - 1, -1)):
            tracker.propagate(v, t, boxes, d)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"bench": "siamfc_time", "device": device, "n": n, "frames": len(pick),
            "boxes_per_frame": round(boxes_total / len(pick), 2),
            "s_per_frame": round(seconds / len(pick), 3),
            "s_per_1000_frames": round(1000 * seconds / len(pick), 1),
            "s_per_box_step": round(seconds / max(boxes_total, 1) / (2 * n), 4),
            "cpu_s_per_1000_frames": round(1000 * cpu / len(pick), 1)}


def tracker_ious(dataset, trackers: dict, *, deltas=(1, 3, -1, -3), frame_step: int = 1) -> list[dict]:
    """``propagation_iou`` of each named tracker, as JSON-ready rows."""
    rows = []
    for name, tracker in trackers.items():
        start = time.perf_counter()
        r = propagation_iou(tracker, dataset, deltas=deltas, frame_step=frame_step)
        rows.append({"bench": "propagation_iou", "tracker": name, "mean_iou": round(r["mean_iou"], 4),
                     "frac_iou_gt_0.5": round(r["frac_above"], 4), "pairs": r["pairs"], "lost": r["lost"],
                     "per_delta": {str(d): round(x["mean_iou"], 4) for d, x in r["per_delta"].items()},
                     "seconds": round(time.perf_counter() - start, 3)})
    return rows


def generate_small(out: str, *, scale: float = 0.002, resolution: str = "160x120", seed: int = 0) -> str:
    """Generate a small synthia-al dataset with ground-truth flow into ``out``; returns train.h5."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, str(REPO / "tools" / "generate.py"), "--preset", "synthia-al", "--scale",
                    str(scale), "--resolution", resolution, "--seed", str(seed), "--flow", "--no-datacard",
                    "--quiet", "--out", out], check=True, env=env, stdout=subprocess.DEVNULL)
    return os.path.join(out, "train.h5")


@click.command()
@click.option("--dataset", type=click.Path(dir_okay=False), default=None,
              help="A train.h5 with ground-truth flow [default: generate one].")
@click.option("--scale", type=float, default=0.002, show_default=True)
@click.option("--resolution", default="160x120", show_default=True)
@click.option("--pairs", type=int, default=10, show_default=True, help="Frame pairs timed per flow method.")
@click.option("--siamfc-weights", type=click.Path(dir_okay=False), default=None)
@click.option("--siamfc-frames", type=int, default=5, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None,
              help="torch and OpenCV threads (default: their choice); 1 makes CPU time comparable.")
def main(dataset, scale, resolution, pairs, siamfc_weights, siamfc_frames, device, threads):
    if threads:
        import cv2

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    print(json.dumps({"bench": "flow", "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                      "torch_threads": torch.get_num_threads(),
                      "python": platform.python_version(), "torch": torch.__version__}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if dataset is None:
            dataset = generate_small(tmp, scale=scale, resolution=resolution)
        ds = VideoDataset(dataset)
        print(json.dumps({"dataset": dataset, "videos": ds.n_videos, "frames": len(ds)}), flush=True)
        for method, opts in (("dis", {"preset": "ultrafast"}), ("dis", {"preset": "fast"}),
                             ("dis", {"preset": "medium"}), ("raft", {"size": "small"}), ("pwcnet", {})):
            print(json.dumps(flow_fps(ds, method, pairs=pairs if method in ("raft", "pwcnet") else 5 * pairs,
                                      device=device, **opts)), flush=True)
        print(json.dumps(siamfc_time(ds, weights=siamfc_weights, frames=siamfc_frames, device=device)), flush=True)
        dis_cache, gt_cache = os.path.join(tmp, "dis.flow.h5"), os.path.join(tmp, "gt.flow.h5")
        r = compute_flow_cache(ds, dis_cache, build_flow_method("dis"))
        print(json.dumps({"bench": "flow_epe", "method": "dis", **{k: v for k, v in r.items()
                                                                   if "epe" in k}}), flush=True)
        compute_flow_cache(ds, gt_cache, GroundTruthFlow())
        trackers = {"identity": IdentityTracker.for_dataset(ds),
                    "flow-dis-center": FlowTracker.for_dataset(ds, flow=dis_cache),
                    "flow-dis-median": FlowTracker.for_dataset(ds, flow=dis_cache, mode="median"),
                    "flow-gt-center": FlowTracker.for_dataset(ds, flow=gt_cache),
                    "flow-gt-median": FlowTracker.for_dataset(ds, flow=gt_cache, mode="median")}
        if siamfc_weights:
            trackers["siamfc"] = SiamFCTracker.for_dataset(ds, weights=siamfc_weights, device=device)
        for row in tracker_ious(ds, trackers):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
