"""Generate a whole dataset: plan, render sequences in parallel workers, merge, data card.

Sequences are independent (each has its own seed), so they are rendered in worker processes
into one shard file each, in a hidden folder inside the output folder; the parent merges the
shards of each split into ``train.h5`` / ``test.h5`` atomically and removes the shards. A run
that fails or is interrupted leaves no split file and no shard behind. The output is the same
whatever the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

import synth
from synth.scenario import load_scenario, plan_sequences
from synth.sequence import RenderOptions, generate_sequence
from vidal.data.writer import merge_shards, remove_stale_temporaries

SPLITS = ("train", "test")


class GenerateError(ValueError):
    """Bad generation input; the message says what to fix."""


def parse_resolution(text: str) -> tuple[int, int]:
    """``"640x480"`` -> (640, 480)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise GenerateError(f"--resolution must look like 640x480, got {text!r}") from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise GenerateError(f"--resolution {text}: width and height must be between 32 and 4096")
    return w, h


def check_output_dir(out: Path, overwrite: bool) -> None:
    """Create ``out`` and make sure it is writable and holds no split file (unless overwrite)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise GenerateError(f"output folder {out} is not writable ({exc.strerror}); "
                            f"choose another --out") from None
    for split in SPLITS:
        if (out / f"{split}.h5").exists() and not overwrite:
            raise GenerateError(f"{out / f'{split}.h5'} already exists; pass --overwrite to replace it "
                                f"or choose another --out")


def _worker(args):
    spec, classes, opts, shard_dir = args
    return generate_sequence(spec, classes, opts, shard_dir)


def _ray_map(jobs: list, workers: int, address: str | None):
    """``_worker(job)`` for every job as Ray tasks of one CPU each, yielded as they finish."""
    from vidal.ray_support import init_ray

    ray = init_ray(address, num_cpus=workers)
    task = ray.remote(num_cpus=1)(_worker)
    pending = [task.remote(job) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def generate_dataset(*, preset: str, out: str | Path, scale: float = 1.0, resolution: str = "640x480",
                     seed: int = 0, workers: int = 1, overwrite: bool = False, masks: bool = False,
                     depth: bool = False, flow: bool = False, compression: str = "gzip",
                     datacard: bool = True, command: str | None = None,
                     progress: bool = True, backend: str = "local", address: str | None = None) -> dict:
    """Generate ``out/train.h5``, ``out/test.h5`` and the data card; returns a summary dict.

    ``backend="ray"`` (the extra ``vidal[ray]``): each sequence is a Ray task (one CPU) on a local
    Ray instance of ``workers`` CPUs or the cluster at ``address`` (``out`` on a file system every
    node sees); the files are byte-identical to a local run's (each sequence depends only on its
    spec; the shards are merged in name order)."""
    if backend not in ("local", "ray"):
        raise GenerateError(f"--backend must be local or ray, got {backend!r}")
    if backend == "ray":
        from vidal.ray_support import require_ray

        require_ray()
    scenario = load_scenario(preset)
    width, height = parse_resolution(resolution)
    if workers < 1:
        raise GenerateError(f"--workers must be >= 1, got {workers}")
    try:
        specs = plan_sequences(scenario, scale=scale, seed=seed)
    except ValueError as exc:
        raise GenerateError(str(exc)) from None
    out = Path(out)
    check_output_dir(out, overwrite)
    opts = RenderOptions(width=width, height=height, masks=masks, depth=depth, flow=flow,
                         compression=compression)
    config = {"scenario": scenario.to_dict(), "scale": scale, "resolution": [width, height],
              "seed": seed, "render": opts.__dict__, "synth_version": synth.__version__}
    command = command or " ".join([Path(sys.executable).name] + sys.argv)
    remove_stale_temporaries(out)  # what a killed earlier run left
    shard_dir = out / f".shards-{os.getpid()}"
    shard_dir.mkdir()
    start = time.perf_counter()
    results = []
    written: dict[str, str] = {}
    try:
        jobs = [(s, scenario.classes, opts, str(shard_dir))
                for s in sorted(specs, key=lambda s: -s.n_frames)]  # long ones first: balanced
        total = sum(s.n_frames for s in specs)
        bar = tqdm(total=total, unit="frame", desc="generating", disable=not progress, file=sys.stderr)
        if backend == "ray":
            for res in _ray_map(jobs, workers, address):
                results.append(res)
                bar.update(res.n_frames)
        elif workers == 1:
            for job in jobs:
                results.append(_worker(job))
                bar.update(results[-1].n_frames)
        else:
            with mp.get_context("fork").Pool(workers) as pool:
                for res in pool.imap_unordered(_worker, jobs):
                    results.append(res)
                    bar.update(res.n_frames)
        bar.close()
        render_s = time.perf_counter() - start
        pending: dict[str, Path] = {}  # every split merged under a hidden name, then all renamed
        for split in SPLITS:
            shards = sorted((r for r in results if r.split == split), key=lambda r: r.name)
            if not shards:
                continue
            pending[split] = merge_shards(out / f".{split}.h5.pending-{os.getpid()}", [r.shard for r in shards], {
                "classes": list(scenario.classes), "fps": scenario.fps, "split": split,
                "generator_config": json.dumps(config, sort_keys=True), "seed": seed,
                "command": command, "created_by": f"synth {synth.__version__}"}, overwrite=True)
        for split, path in pending.items():
            os.replace(path, out / f"{split}.h5")
            written[split] = str(out / f"{split}.h5")
    except BaseException:
        for path in written.values():  # all splits or none: drop a split renamed before the error
            Path(path).unlink(missing_ok=True)
        remove_stale_temporaries(out, include_own=True)
        raise
    finally:
        shutil.rmtree(shard_dir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    frames = sum(r.n_frames for r in results)
    summary = {"out": str(out), "files": written, "sequences": len(results), "frames": frames,
               "boxes": sum(r.n_boxes for r in results), "seconds": round(elapsed, 2),
               "frames_per_second": round(frames / max(render_s, 1e-9), 1),
               "bytes_per_frame": round(sum(Path(p).stat().st_size for p in written.values()) / max(frames, 1))}
    if datacard:
        from synth.datacard import write_datacard
        md, png = write_datacard([Path(p) for p in written.values()], out, name="data_card")
        summary["data_card"], summary["montage"] = str(md), str(png)
    return summary
