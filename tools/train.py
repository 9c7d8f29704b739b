"""Train a detector from a config, evaluating on the test split as it goes.

    python tools/train.py configs/detection/frcnn-effl0-fpn_cpu_synthia-al-1pct.py --work-dir work_dirs/effl0 \\
        [--eval-every 1] [--eval-max-frames 300] [--cfg-options schedule.epochs=4 detector.lr=0.01]
    torchrun --nproc_per_node 2 tools/train.py CONFIG --work-dir DIR --launcher ddp   # 2 processes (gloo on CPU)

With ``--launcher ddp`` each process trains on its share of every global batch of
``schedule.batch_size x N`` frames (the batch size is per process), gradients are averaged, and
only rank 0 evaluates and writes the work dir (vidal/distributed.py).

Writes WORK_DIR/config.py (the resolved config), metrics.jsonl (one row per evaluated epoch:
training minutes so far, loss, test mAP@0.5), latest.pth / final.pth and metrics.json (final).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from vidal.build import build_spec
from vidal.cli import cfg_options, command_line, launcher_options, one_line_errors
from vidal.config import ConfigError, dump, load_config
from vidal.data.dataset import DatasetFormatError
from vidal.provenance import provenance
from vidal.training import spread_indices, train_detector


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def describe_model(detector) -> str:
    """What the detector is, for the log: the torchvision backbone or the mmdet config."""
    config = detector.config
    return str(getattr(config, "backbone", None) or getattr(config, "config", None) or type(detector).__name__)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--work-dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--eval-every", type=int, default=0, show_default=True,
              help="Evaluate on the test split every N epochs (0: only at the end).")
@click.option("--eval-max-frames", type=int, default=None,
              help="Evaluate on at most N test frames spread over the split (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@launcher_options("ddp: one of several processes started by torchrun --nproc_per_node N (gloo on CPU, NCCL on "
                  "GPUs); schedule.batch_size is per process, only rank 0 writes --work-dir.",
                  "evaluates alone after an epoch")
@cfg_options
def main(config, work_dir, cfg_options, eval_every, eval_max_frames, quiet, launcher, dist_timeout):
    """Train the detector of CONFIG on its train split."""
    from vidal import distributed

    with one_line_errors(distributed.LauncherError):
        ranks = distributed.init(launcher, timeout_min=dist_timeout)
    try:
        with one_line_errors(distributed.RankTimeoutError):
            run(config, work_dir, cfg_options, eval_every, eval_max_frames, quiet, ranks)
    finally:
        distributed.shutdown()


def run(config, work_dir, cfg_options, eval_every, eval_max_frames, quiet, ranks):
    import torch

    echo = click.echo if ranks.is_main else (lambda *a, **k: None)
    with one_line_errors(ConfigError, DatasetFormatError, ValueError, OSError):
        cfg = load_config(config, cfg_options)
        spec = build_spec(cfg)  # every section and dataset path, before anything is read or written
        train_set, test_set = spec.open("train"), spec.open("test")
        detector = spec.detector.build(train_set.classes)
        eval_options = dict(spec.evaluation)
        config_max_frames = eval_options.pop("max_frames")
        eval_max_frames = eval_max_frames if eval_max_frames is not None else config_max_frames
    work = Path(work_dir)
    if ranks.is_main:
        work.mkdir(parents=True, exist_ok=True)
        _write(work / "config.py", dump(cfg))
        _write(work / "provenance.json", json.dumps({**provenance(command_line()), "world_size": ranks.world_size},
                                                    indent=1))
    torch.manual_seed(detector.config.seed)
    epochs = detector.config.epochs
    eval_epochs = range(eval_every, epochs + 1, eval_every) if eval_every > 0 else ()
    if ranks.distributed:
        echo(f"{ranks.world_size} processes ({ranks.backend}): batch {detector.config.batch_size} per process, "
             f"global batch {detector.config.batch_size * ranks.world_size}")
    echo(f"training {describe_model(detector)} on {len(train_set)} frames of {train_set.paths[0]} "
               f"for {epochs} epochs; evaluating on {eval_max_frames or len(test_set)} test frames")
    t = time.perf_counter()
    rows = train_detector(detector, train_set, work_dir=work, test_set=test_set, eval_epochs=eval_epochs,
                          eval_indices=spread_indices(len(test_set), eval_max_frames), eval_options=eval_options,
                          progress=not quiet, log=echo)
    if not ranks.is_main:
        return
    final = {**rows[-1], "wall_minutes": (time.perf_counter() - t) / 60}
    _write(work / "metrics.json", json.dumps(final, indent=1))
    click.echo(f"test mAP@0.5 {final.get('mAP50')} after {final['train_minutes']:.2f} training minutes")
    click.echo(f"wrote {work / 'final.pth'}, {work / 'metrics.jsonl'}, {work / 'metrics.json'}")


if __name__ == "__main__":
    main()
