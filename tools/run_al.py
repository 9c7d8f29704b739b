"""Run one active-learning experiment (train -> predict -> acquire -> select, per cycle).

    python tools/run_al.py configs/al/entropy-mean_frcnn-effl0-imagenet-cpu_synthia-al-1pct-mini.py \\
        --work-dir runs/entropy-mean/seed0 --seed 0
    python tools/run_al.py CONFIG --work-dir DIR --seed 0 --resume      # continue an interrupted run
    python tools/run_al.py CONFIG --work-dir DIR --cfg-options al.cycles=2 schedule.epochs=1
    python tools/run_al.py CONFIG --work-dir DIR --cfg-options al.oracle='"human"'   # people label the frames
    torchrun --nproc_per_node 2 tools/run_al.py CONFIG --work-dir DIR --launcher ddp   # 2 processes

With al.oracle="human" a run stops whenever it needs labels, after writing the annotation job, and
prints the next steps (export_selection.py, label, import_labels.py, --resume; vidal/human.py).

The work dir receives the resolved config, the seed, versions and git commit, the labeled set of
every cycle, metrics.jsonl (one row per cycle) and the latest checkpoint (see vidal/loop.py).
"""

from __future__ import annotations

import click

from vidal.cli import SEED, cfg_options, command_line, launcher_options, one_line_errors
from vidal.config import ConfigError, load_config
from vidal.loop import Experiment, ExperimentError
from vidal.data.dataset import DatasetFormatError
from vidal.locking import FolderLockedError
from vidal.weights import WeightsError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--work-dir", required=True, type=click.Path(file_okay=False), help="Output folder of this run.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Experiment seed: initial labeled set (shared by all methods), training, tie-breaking.")
@click.option("--resume", is_flag=True, help="Continue the experiment in --work-dir from its last completed step.")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads (bit-identical reruns need the same number).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--only", type=click.Choice(["cycle0", "reference"]), default=None,
              help="cycle0: train and evaluate only cycle 0, to share it (--cycle0-from); reference: only the "
                   "all-data model.")
@click.option("--cycle0-from", type=click.Path(file_okay=False), default=None,
              help="Work dir of an --only cycle0 run of the same config (but acquisition / tracker), seed and "
                   "--threads: start from its cycle-0 model instead of training it again.")
@launcher_options("ddp: one of several processes started by torchrun --nproc_per_node N: training and pool "
                  "inference shared by the processes (schedule.batch_size per process), rank 0 writes.",
                  "evaluates and selects alone")
@click.option("--pool-shards/--no-pool-shards", default=None,
              help="Store the pool predictions per video (cycle_XXX/pool_predictions/; streamed to the "
                   "acquisition). Default: with --launcher ddp only.")
@cfg_options
def main(config, work_dir, seed, resume, cfg_options, threads, quiet, only, cycle0_from, launcher, pool_shards,
         dist_timeout):
    """Run the AL experiment of CONFIG into --work-dir."""
    from vidal import distributed

    command = command_line()
    with one_line_errors(distributed.LauncherError):
        ranks = distributed.init(launcher, timeout_min=dist_timeout)
    try:
        with one_line_errors(ConfigError, ExperimentError, WeightsError, FileNotFoundError, DatasetFormatError,
                             FolderLockedError, distributed.RankTimeoutError):
            cfg = load_config(config, cfg_options)
            exp = Experiment(cfg, work_dir, seed, resume=resume, progress=not quiet, threads=threads,
                             command=command, only=only, cycle0_from=cycle0_from, pool_shards=pool_shards)
            result = exp.run()
    finally:
        distributed.shutdown()
    if not ranks.is_main or result.get("waiting"):  # waiting: al.oracle="human" stopped for labels, next steps printed
        return
    rows = result["rows"]
    if rows:
        last = rows[-1]
        click.echo(f"final: {last['labeled']} labeled frames ({100 * last['labeled_fraction']:.1f} %), "
                   f"mAP@0.5 {last['mAP'] if last['mAP'] is not None else float('nan'):.4f}")
    click.echo(f"wrote {exp.work_dir / 'metrics.jsonl'} ({len(rows)} cycles), config snapshot "
               f"{exp.work_dir / 'config.py'}")
    if result["reference"]:
        click.echo(f"wrote {exp.work_dir / 'reference.json'} (all data: mAP@0.5 {result['reference']['mAP']})")


if __name__ == "__main__":
    main()
