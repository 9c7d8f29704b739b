"""Training images/s with 1 and N processes and pool inference frames/s per rank (issue 18), with
``torchrun`` on this machine (gloo on CPU, NCCL with GPUs), one torch thread per rank.

    python benchmarks/bench_distributed.py [--procs 1,2] [--iterations 6] [--batch 2] [--frames 48]

Each run: a tiny generated dataset (tests/tiny_videos.py, 64x96 frames), the tests' tiny
MobileNetV3-FPN Faster R-CNN (frozen BatchNorm), one warm-up step, then ``--iterations`` steps
of ``--batch`` frames per rank (global batch = batch x processes), timed on rank 0; then every
rank predicts its whole videos of the pool (vidal.distributed.shard_videos), timed per rank.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def worker(config: str, iterations: int, batch: int) -> None:
    import torch

    from vidal import distributed
    from vidal.build import build_spec
    from vidal.config import load_config
    from vidal.training import FrameView, predict_frames

    ranks = distributed.init("ddp")
    torch.set_num_threads(1)
    spec = build_spec(load_config(config))
    pool = spec.open("train")
    det = spec.detector.build(pool.classes, seed=0)
    det.train(FrameView(pool), iterations=1, batch_size=batch)  # warm-up
    ranks.barrier()
    t = time.perf_counter()
    det.train(FrameView(pool), iterations=iterations, batch_size=batch)
    ranks.barrier()
    train_s = time.perf_counter() - t
    video_of = pool.video_of_frames()
    sizes = [int((video_of == v).sum()) for v in range(int(video_of.max()) + 1)]
    mine = distributed.shard_videos(sizes, ranks.world_size)[ranks.rank]
    frames = [i for v in mine for i in range(len(video_of)) if video_of[i] == v]
    t = time.perf_counter()
    predict_frames(det, pool, frames, batch_size=8, progress=False)
    pred_s = time.perf_counter() - t
    per_rank = ranks.gather((ranks.rank, len(frames), pred_s))
    if ranks.is_main:
        n = iterations * batch * ranks.world_size
        print(f"RESULT {ranks.world_size} process(es): training {n} images in {train_s:.2f} s = "
              f"{n / train_s:.2f} images/s (batch {batch} per rank)")
        for r, k, s in per_rank:
            print(f"RESULT   rank {r}: pool inference {k} frames in {s:.2f} s = {k / s:.1f} frames/s")
    distributed.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=48, help="pool frames (videos of 12)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), int(args.worker[2]))
        return
    from tiny_videos import tiny_experiment_config, write_split

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_split(root / "train.h5", [12] * max(1, args.frames // 12), 0, "train")
        write_split(root / "test.h5", [4], 1, "test")
        cfg = root / "cfg.py"
        cfg.write_text(tiny_experiment_config(root).replace("detector = dict(", 'detector = dict(norm="frozen_bn", '))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
        for p in (int(x) for x in args.procs.split(",")):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(p),
                                  "--master_addr", "127.0.0.1", "--master_port", str(port), __file__, "--worker",
                                  str(cfg), str(args.iterations), str(args.batch)],
                                 env=env, capture_output=True, text=True, timeout=900)
            lines = [ln[7:] for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            print("\n".join(lines) if lines else out.stdout[-2000:] + out.stderr[-2000:], flush=True)


if __name__ == "__main__":
    main()
