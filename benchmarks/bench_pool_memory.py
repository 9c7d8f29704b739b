"""Peak memory of scoring the pool as it grows (issue 18): simulated predictions of a pool of
10k ... 100k frames stored as per-video shards (vidal/pool_shards.py), scored by the entropy
acquisition through the streamed ShardedPredictions, and, for comparison, through the whole
list in memory (what one pool_predictions.npz gives).

    python benchmarks/bench_pool_memory.py [--frames 10000,100000] [--video-frames 100]

Prints, per pool size, the peak resident memory (ru_maxrss) of a fresh process that scores the
pool (the shards are written before by this process; reading them is part of the scoring) and
the Python-heap peak of the scoring alone (tracemalloc). The streamed peak RSS must stay flat
(the issue asks <= 1.5x from 10k to 100k frames); the whole list in memory grows with the pool.
The heap peak of the streamed scoring still grows by ~50 bytes per frame: the candidate and
score vectors ``[K]`` and the frame -> video index, which any scoring of K frames holds; the
predictions themselves are held one video (a few videos) at a time.
Simulated predictions: each frame 0-12 detections of 8 classes, random boxes and softmax rows
(tests/sim_detections.py makes them from ground truth; here there is none to read).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidal.acquisition import AcquisitionContext  # noqa: E402
from vidal.detection.base import Predictions  # noqa: E402
from vidal.pool_shards import PoolShards  # noqa: E402

C = 8


def simulated(rng: np.random.Generator, n_frames: int) -> list[Predictions]:
    out = []
    for _ in range(n_frames):
        n = int(rng.integers(0, 13))
        logits = rng.normal(size=(n, C + 1))
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
        labels = probs[:, 1:].argmax(1).astype(np.int64) + 1
        xy = rng.uniform(0, 600, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(6, 60, (n, 2))], 1).astype(np.float32)
        out.append(Predictions(boxes, probs[np.arange(n), labels], labels, probs))
    return out


def write_pool(folder: Path, n_frames: int, per_video: int, seed: int = 0) -> PoolShards:
    video_of = np.arange(n_frames) // per_video
    shards = PoolShards(folder, video_of)
    rng = np.random.default_rng(seed)
    for v in range(shards.n_videos):
        shards.write(v, simulated(rng, len(shards.frames_of[v])), 0.0)
    shards.finish(0.0)
    return shards


def score(predictions, n_frames: int) -> np.ndarray:
    from vidal.registry import ACQUISITIONS

    acq = ACQUISITIONS.get("entropy")()
    ctx = AcquisitionContext(dataset=None, candidates=np.arange(n_frames), labeled=np.zeros(n_frames, bool),
                             num_classes=C, class_names=[f"c{k}" for k in range(1, C + 1)], cycle=0,
                             rng=np.random.default_rng(0))
    ctx.predictions = predictions
    return acq.score(ctx)


def peak_of(fn) -> tuple[float, float]:
    """(peak MiB of the Python heap while ``fn`` runs, seconds)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, seconds


def child(folder: str, n: int, per_video: int, mode: str) -> None:
    """In a fresh process: score the pool of ``folder`` (streamed or as a whole list) and print
    the peak resident memory of the process (ru_maxrss) and the heap peak of the scoring."""
    import resource

    shards = PoolShards(folder, np.arange(n) // per_video)
    if mode == "streamed":
        heap, secs = peak_of(lambda: score(shards.predictions(), n))
    else:
        def whole():
            flat = [p for v in range(shards.n_videos) for p in shards.read(v)]
            score(flat, n)
        heap, secs = peak_of(whole)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{rss:.1f} {heap:.2f} {secs:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", default="10000,100000", help="pool sizes, comma-separated")
    ap.add_argument("--video-frames", type=int, default=100, help="frames per video (one shard each)")
    ap.add_argument("--in-memory", action="store_true", help="also score the whole list held in memory")
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "N", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.video_frames, args.child[2])
        return
    import subprocess

    sizes = [int(x) for x in args.frames.split(",")]
    modes = ["streamed"] + (["whole"] if args.in_memory else [])
    rss: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            t = time.perf_counter()
            folder = Path(tmp) / f"pool{n}"
            shards = write_pool(folder, n, args.video_frames)
            made = time.perf_counter() - t
            for mode in modes:
                out = subprocess.run([sys.executable, __file__, "--video-frames", str(args.video_frames), "--child",
                                      str(folder), str(n), mode], capture_output=True, text=True, check=True)
                peak, heap, secs = map(float, out.stdout.split())
                rss[n, mode] = peak
                print(f"pool {n:>7} frames ({shards.n_videos} shards, written in {made:.1f} s), {mode:>8}: peak RSS "
                      f"{peak:7.1f} MiB, heap peak of scoring {heap:7.2f} MiB, {secs:.1f} s", flush=True)
    lo, hi = sizes[0], sizes[-1]
    for mode in modes:
        ratio = rss[hi, mode] / rss[lo, mode]
        print(f"{mode}: peak RSS {hi} / {lo} frames = {ratio:.2f}x"
              + (f" ({'flat' if ratio <= 1.5 else 'NOT flat'}: <= 1.5x asked)" if mode == "streamed" else ""))


if __name__ == "__main__":
    main()
