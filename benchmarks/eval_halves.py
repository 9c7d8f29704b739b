"""How much of a model's mAP is the test frames: evaluate the last model of AL runs on the even and
on the odd frames of the test split (docs/results.md, "Where the noise comes from").

    python benchmarks/eval_halves.py RUN_DIR [RUN_DIR ...] [--config configs/al/cpu/random-r.py]

Prints one JSON line per run: the thesis-protocol mAP (scores >= 0.5) and the every-detection mAP
on each half. The halves of a 25-fps split are neighbours, not independent samples: their gap is
a lower bound of the test-set noise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--config", default="configs/al/cpu/random-r.py", show_default=True, type=click.Path(dir_okay=False),
              help="Config naming the test split and the evaluation options.")
@click.option("--threads", default=1, show_default=True, type=int)
def main(run_dirs, config, threads):
    import torch

    from vidal.build import evaluation_options, open_split
    from vidal.config import load_config
    from vidal.detection import load_detector
    from vidal.training import evaluate_thesis_frames, predict_frames

    torch.set_num_threads(threads)
    cfg = load_config(config)
    test, ev = open_split(cfg, "test"), evaluation_options(cfg)
    halves = {"even": list(range(0, len(test), 2)), "odd": list(range(1, len(test), 2))}
    for run in run_dirs:
        models = sorted(Path(run).glob("cycle_*/model.pt"))
        if not models:
            raise click.ClickException(f"{run}: no cycle_*/model.pt (the loop keeps the last cycle's model)")
        det = load_detector(models[-1])
        out = {"run": run, "model": str(models[-1])}
        for name, frames in halves.items():
            preds = predict_frames(det, test, frames, batch_size=4, progress=False)
            gts = [test.ground_truth(i) for i in frames]
            for label, thr in (("thesis", ev["score_threshold"]), ("every_detection", 0.0)):
                r = evaluate_thesis_frames(test, preds, frames, ground_truth=gts, score_threshold=thr,
                                           nms_iou=ev["nms_iou"], matching=ev["matching"])
                out[f"{name}_{label}"] = round(r["mAP"], 4)
        click.echo(json.dumps(out))


if __name__ == "__main__":
    main()
