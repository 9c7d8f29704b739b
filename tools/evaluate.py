"""Evaluate a detector checkpoint on a split of a config's dataset.

    python tools/evaluate.py CONFIG CHECKPOINT [--split test] [--max-frames N] [--coco] [--out metrics.json]

Prints and writes (JSON) the thesis protocol mAP@0.5 (NMS 0.5, scores >= 0.5, VOC all-point),
AP@0.5 per class, the same without the score threshold, and COCO metrics with --coco.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from vidal.build import build_spec
from vidal.cli import DEVICE, POSITIVE_INT, cfg_options, command_line, one_line_errors
from vidal.config import ConfigError, load_config
from vidal.data.dataset import DatasetFormatError
from vidal.detection import load_detector
from vidal.provenance import provenance
from vidal.training import evaluate_frames, predict_frames, spread_indices


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--split", default="test", show_default=True, help="Dataset split of the config.")
@click.option("--max-frames", type=POSITIVE_INT, default=None, help="At most N frames spread over the split.")
@click.option("--coco", is_flag=True, help="Also compute COCO metrics (pycocotools).")
@click.option("--device", type=DEVICE, default=None, help="cpu / cuda (default: the checkpoint's).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="JSON output (default: metrics_<split>.json next to CHECKPOINT).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@cfg_options
def main(config, checkpoint, split, max_frames, coco, device, out, overwrite, cfg_options, quiet):
    """Evaluate CHECKPOINT on a split of CONFIG's dataset."""
    with one_line_errors(ConfigError, DatasetFormatError, ValueError, OSError):
        out = Path(out) if out else Path(checkpoint).with_name(f"metrics_{split}.json")
        if out.exists() and not overwrite:
            raise ValueError(f"{out} exists; pass --overwrite to replace it, or choose another --out")
        cfg = load_config(config, cfg_options)
        spec = build_spec(cfg, splits=(split,), detector=False)  # the checkpoint holds the detector
        dataset = spec.open(split)
        ev = {**spec.evaluation, **({"coco": True} if coco else {})}
        config_max_frames = ev.pop("max_frames")
        max_frames = max_frames if max_frames is not None else config_max_frames
        expect = {"device": device} if device else {}
        detector = load_detector(checkpoint, num_classes=dataset.num_classes, **expect)
        if list(detector.class_names) != list(dataset.classes):
            raise ValueError(f"{checkpoint}: classes {detector.class_names} differ from the dataset's "
                             f"{dataset.classes}")
        indices = spread_indices(len(dataset), max_frames)
    t = time.perf_counter()
    preds = predict_frames(detector, dataset, indices, progress=not quiet)
    predict_s = time.perf_counter() - t
    metrics = evaluate_frames(dataset, preds, indices, **ev)
    metrics.update({"split": split, "dataset": str(dataset.paths[0]), "checkpoint": str(checkpoint),
                    "predict_seconds": round(predict_s, 2), "provenance": provenance(command_line())})
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(metrics, indent=1))
    os.replace(tmp, out)
    click.echo(f"mAP@0.5 {metrics['mAP50']} (thesis protocol) on {metrics['num_frames']} frames; per class: "
               + ", ".join(f"{k} {v}" for k, v in metrics["AP50"].items()))
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
