"""Detector speed and memory on CPU (or GPU): training images/s and inference frames/s per
backbone, ``default`` vs ``cpu`` profile, peak RSS. Prints JSON lines.

    python benchmarks/bench_detector.py [--backbones resnet18_fpn,mobilenet_v3_fpn,resnet50_fpn]
        [--profiles default,cpu] [--resolution 320x240] [--height 300] [--iters 4] [--threads 2]

Random weights (speed does not depend on them), random RGB images of ``--resolution`` with 1-6
random boxes each, resized to ``--height`` (thesis 2.5.1: 300 px). Each (backbone, profile) runs
in its own subprocess so that ``peak_rss_mb`` (resource.getrusage ru_maxrss) is its own.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time

import click


def _frames(n, w, h, num_classes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        m = int(rng.integers(1, 7))
        xy = rng.uniform(0, [w - 20, h - 20], size=(m, 2))
        wh = rng.uniform(10, [w / 3, h / 3], size=(m, 2))
        boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], 1).astype(np.float32)
        frames.append({"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "boxes": boxes,
                           "labels": rng.integers(1, num_classes + 1, m).astype(np.int64)})
    return frames


def run_one(backbone, prof, w, h, height, iters, batch_size, threads, device):
    import torch

    from vidal.detection import FasterRCNNDetector, profile

    torch.set_num_threads(threads)
    cfg = profile(prof, backbone=backbone, height=height, batch_size=batch_size, device=device, hflip=0.5)
    det = FasterRCNNDetector(class_names=["car", "bike", "motorcycle"], config=cfg)
    frames = _frames(batch_size * (iters + 1), w, h, det.num_classes)
    det.train(frames[:batch_size], epochs=1, iterations=1)  # warm-up (allocator, lazy init)
    t = time.perf_counter()
    hist = det.train(frames[batch_size:], epochs=1, iterations=iters)
    train_s = time.perf_counter() - t
    images = [f["image"] for f in frames[: max(8, batch_size)]]
    det.predict(images[:1])
    t = time.perf_counter()
    preds = det.predict(images)
    pred_s = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"bench": "detector", "backbone": backbone, "profile": prof, "device": str(det.device),
            "threads": threads, "resolution": f"{w}x{h}", "height": height, "batch_size": batch_size,
            "train_iters": len(hist), "train_images_per_s": round(len(hist) * batch_size / train_s, 3),
            "infer_frames_per_s": round(len(images) / pred_s, 3),
            "mean_detections": round(sum(len(p) for p in preds) / len(preds), 1),
            "peak_rss_mb": round(rss, 1)}


@click.command()
@click.option("--backbones", default="resnet18_fpn,mobilenet_v3_fpn,resnet50_fpn", show_default=True)
@click.option("--profiles", default="default,cpu", show_default=True)
@click.option("--resolution", default="320x240", show_default=True)
@click.option("--height", type=int, default=300, show_default=True, help="Resize height (thesis: 300).")
@click.option("--iters", type=int, default=4, show_default=True, help="Timed training iterations.")
@click.option("--batch-size", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--one", is_flag=True, hidden=True, help="Run a single (backbone, profile) in this process.")
def main(backbones, profiles, resolution, height, iters, batch_size, threads, device, one):
    w, h = (int(v) for v in resolution.lower().split("x"))
    if one:
        print(json.dumps(run_one(backbones, profiles, w, h, height, iters, batch_size, threads, device)))
        return
    import torch

    print(json.dumps({"bench": "detector-env", "cpu_count": os.cpu_count(), "python": platform.python_version(),
                      "torch": torch.__version__, "threads": threads}), flush=True)
    for bb in backbones.split(","):
        for prof in profiles.split(","):
            cmd = [sys.executable, __file__, "--one", "--backbones", bb, "--profiles", prof, "--resolution",
                   resolution, "--height", str(height), "--iters", str(iters), "--batch-size", str(batch_size),
                   "--threads", str(threads), "--device", device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode:
                print(json.dumps({"bench": "detector", "backbone": bb, "profile": prof,
                                  "error": out.stderr.strip().splitlines()[-1:]}), flush=True)
            else:
                print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
