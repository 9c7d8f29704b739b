"""Generation throughput: frames/s per worker at 640x480 (render + annotate + HDF5 write),
bytes per frame on disk, and scaling from 1 to 2 workers. Prints JSON lines.

    python benchmarks/bench_generate.py [--scale 0.01] [--resolution 640x480] [--dense]

Each configuration generates the same planned sequences of the synthia-al preset (so the mix
of areas and conditions is the preset's) into a temporary folder, without the data card.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time

import click

from synth.generate import generate_dataset


@click.command()
@click.option("--scale", type=float, default=0.01, show_default=True)
@click.option("--resolution", default="640x480", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-workers", type=int, default=2, show_default=True)
@click.option("--dense", is_flag=True, help="Also store masks, depth and flow (their cost).")
def main(scale, resolution, seed, max_workers, dense):
    base = None
    print(json.dumps({"bench": "generate", "cpu_count": os.cpu_count(), "python": platform.python_version(),
                      "scale": scale, "resolution": resolution, "dense": dense}))
    for workers in range(1, max_workers + 1):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            s = generate_dataset(preset="synthia-al", out=tmp, scale=scale, resolution=resolution, seed=seed,
                                 workers=workers, datacard=False, progress=False,
                                 masks=dense, depth=dense, flow=dense)
            wall = time.perf_counter() - start
        fps = s["frames"] / wall
        base = base or fps
        print(json.dumps({"workers": workers, "frames": s["frames"], "sequences": s["sequences"],
                          "wall_s": round(wall, 2), "frames_per_s": round(fps, 1),
                          "frames_per_s_per_worker": round(fps / workers, 1),
                          "speedup_vs_1_worker": round(fps / base, 2),
                          "bytes_per_frame": s["bytes_per_frame"]}))


if __name__ == "__main__":
    main()
