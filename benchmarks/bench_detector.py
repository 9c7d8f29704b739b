"""Detector speed and memory on CPU (or GPU): training images/s and inference frames/s per
backbone and profile, peak RSS. Prints JSON lines.

    python benchmarks/bench_detector.py [--dataset data/synthia-al-1pct/train.h5]
        [--backbones resnet50_fpn:default,efficientnet_lite0_fpn:cpu,...] [--iters 6] [--threads 2]

Each entry of ``--backbones`` is ``BACKBONE:PROFILE``, optionally followed by ``+imagenet`` and
``+FIELD=VALUE`` config overrides (``resnet_tiny_fpn:cpu+fpn_channels=32``, the from-scratch
detector config); the first is the reference (default:
torchvision's stock Faster R-CNN settings, ResNet-50 FPN with its RPN / RoI sampling sizes) and
every line reports ``speedup_vs_reference`` of training images/s, all measured in this one run on
the same images. Images: frames of ``--dataset`` (real generated frames with their boxes) or,
without it, random RGB images of ``--resolution`` with 1-6 random boxes each; all are resized to
``--height`` (thesis 2.5.1: 300 px). Random weights (a pretrained backbone uses FrozenBatchNorm
and frozen early stages: add ``+imagenet`` to an efficientnet entry to time that; speed also drifts
by ~10 % as training changes the proposals, so compare entries of one run).
Each entry runs in its own subprocess so that ``peak_rss_mb`` (ru_maxrss) is its own.
"""

from __future__ import annotations

import ast
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


def _dataset_frames(path, n):
    from vidal.data import VideoDataset

    ds = VideoDataset(path)
    step = max(1, len(ds) // n)
    return [ds[i] for i in range(0, step * n, step)][:n], ds.classes


def run_one(spec, w, h, height, iters, batch_size, threads, device, dataset):
    import torch

    from vidal.detection import FasterRCNNDetector, profile

    torch.set_num_threads(threads)
    backbone, _, prof = spec.partition(":")
    prof, *extras = (prof or "default").split("+")
    n = batch_size * (iters + 1)
    if dataset:
        frames, classes = _dataset_frames(dataset, n)
        h, w = frames[0]["image"].shape[:2]
    else:
        classes = ["car", "bike", "motorcycle"]
        frames = _frames(n, w, h, len(classes))
    kw = {}
    for extra in extras:  # "imagenet" or a config field "key=value" (e.g. fpn_channels=32)
        if extra == "imagenet":
            kw["backbone_weights"] = "imagenet"
        else:
            key, _, value = extra.partition("=")
            kw[key] = ast.literal_eval(value)
    cfg = profile(prof, backbone=backbone, height=height, batch_size=batch_size, device=device, hflip=0.5, **kw)
    det = FasterRCNNDetector(class_names=classes, config=cfg)
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
    return {"bench": "detector", "spec": spec, "backbone": backbone, "profile": prof, "device": str(det.device),
            "threads": threads, "resolution": f"{w}x{h}", "height": height, "batch_size": batch_size,
            "train_iters": len(hist), "train_images_per_s": round(len(hist) * batch_size / train_s, 3),
            "infer_frames_per_s": round(len(images) / pred_s, 3),
            "mean_detections": round(sum(len(p) for p in preds) / len(preds), 1),
            "peak_rss_mb": round(rss, 1)}


@click.command()
@click.option("--backbones", default="resnet50_fpn:default,resnet_tiny_fpn:cpu+fpn_channels=32,efficientnet_lite0_fpn:cpu,"
              "efficientnet_lite0_fpn:cpu+imagenet,mobilenet_v3_fpn:cpu,resnet18_fpn:cpu", show_default=True,
              help="BACKBONE:PROFILE[+imagenet][+FIELD=VALUE...] entries; the first is the reference.")
@click.option("--dataset", default=None, help="vidal-video-v1 file whose frames are used (default: random images).")
@click.option("--resolution", default="640x480", show_default=True, help="Random image size (without --dataset).")
@click.option("--height", type=int, default=300, show_default=True, help="Resize height (thesis: 300).")
@click.option("--iters", type=int, default=6, show_default=True, help="Timed training iterations.")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--one", is_flag=True, hidden=True, help="Run a single (backbone, profile) in this process.")
def main(backbones, dataset, resolution, height, iters, batch_size, threads, device, one):
    w, h = (int(v) for v in resolution.lower().split("x"))
    if one:
        print(json.dumps(run_one(backbones, w, h, height, iters, batch_size, threads, device, dataset)))
        return
    import torch

    print(json.dumps({"bench": "detector-env", "cpu_count": os.cpu_count(), "python": platform.python_version(),
                      "torch": torch.__version__, "threads": threads}), flush=True)
    reference = None
    for spec in backbones.split(","):
        cmd = [sys.executable, __file__, "--one", "--backbones", spec, "--resolution", resolution, "--height",
               str(height), "--iters", str(iters), "--batch-size", str(batch_size), "--threads", str(threads),
               "--device", device] + (["--dataset", dataset] if dataset else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode:
            print(json.dumps({"bench": "detector", "spec": spec, "error": out.stderr.strip().splitlines()[-1:]}),
                  flush=True)
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        reference = reference or row
        row["speedup_vs_reference"] = round(row["train_images_per_s"] / reference["train_images_per_s"], 2)
        row["reference"] = reference["spec"]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
