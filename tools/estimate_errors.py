"""Estimate a detector's false positives / negatives with temporal coherence (thesis 2.3.2) and,
where the split has ground truth, check the estimates against the real errors.

    python tools/estimate_errors.py CONFIG CHECKPOINT --tracker flow|siamfc|identity [--split test|train]
        [--out DIR] [--max-frames N] [--overlays K] [--cfg-options temporal_coherence.link_iou=0.3 ...]

CONFIG is a vidal config: ``dataset = dict(train=..., test=...)``; optional ``tracker = dict(name=...,
**options)`` (its options are used when ``--tracker`` names the same tracker; without ``--tracker``
its name is used, else ``identity``) and ``temporal_coherence = dict(...)`` (parameters, see
vidal.acquisition.temporal_coherence.DEFAULTS; an AL config's ``acquisition`` section of
``name="temporal_coherence"`` is used when there is none). CHECKPOINT is a vidal detector
checkpoint (tools/train.py writes them).

Writes OUT/errors.json (parameters, graph sizes, timings, and the checks: precision / recall of the
detections labelled FP against real FPs, FP base rate, precision / recall of the candidates labelled
FN against real misses, Spearman rank correlation of estimated and real per-frame #FP and #FN,
per-frame counts) and OUT/overlays/*.png (thesis Fig. 2.3 colours) for the K frames with the most
estimated errors.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click
import numpy as np

from vidal.cli import POSITIVE_INT, cfg_options, command_line, one_line_errors
from vidal.config import ConfigError, load_config, section
from vidal.data.dataset import DatasetFormatError
from vidal.jsonsafe import json_safe


def _tc_params(cfg: dict) -> dict:
    if "temporal_coherence" in cfg:
        return section(cfg, "temporal_coherence")
    acq = section(cfg, "acquisition", required=False)
    if acq.get("name") == "temporal_coherence":
        return {k: v for k, v in acq.items() if k != "name"}
    return {}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--tracker", "tracker_name", default=None,
              help="Tracker name (identity, flow, siamfc, ...); default: the config's tracker.name, else identity.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train", "val"]))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Output folder [default: work_dirs/estimate_errors/<config name>_<split>_<tracker>].")
@click.option("--max-frames", type=int, default=None,
              help="Use only the first N frames of the split (whole videos, the last one cut).")
@click.option("--overlays", type=int, default=8, show_default=True,
              help="Write overlays of the K frames with the most estimated errors.")
@click.option("--batch-size", type=POSITIVE_INT, default=8, show_default=True, help="Frames per detector call.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@cfg_options
def main(config, checkpoint, tracker_name, split, out, max_frames, overlays, batch_size, threads, quiet,
         cfg_options):
    """Estimate errors of the detector CHECKPOINT on the SPLIT of CONFIG with temporal coherence."""
    import torch

    from vidal.acquisition.temporal_coherence import (
        TemporalCoherence,
        evaluate_estimates,
    )
    from vidal.build import build_spec, build_tracker, config_where, tracker_spec
    from vidal.detection import load_detector
    from vidal.tracking.base import Tracker
    from vidal.training import predict_frames
    from vidal.viz import overlay_frame_errors, save_png

    if threads:
        torch.set_num_threads(threads)
    with one_line_errors(ConfigError, DatasetFormatError, ValueError, OSError):
        cfg = load_config(config, cfg_options)
        where = config_where(cfg)
        try:
            tc = TemporalCoherence(**_tc_params(cfg))
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
        dataset = build_spec(cfg, splits=(split,), detector=False, evaluation=False).open(split)
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, got {max_frames}")
        if overlays < 0:
            raise ValueError(f"--overlays must be >= 0, got {overlays}")
        name, tracker_options = tracker_spec(cfg, name=tracker_name, default="identity")
        tracker = build_tracker(cfg, (name, tracker_options), dataset)
        if not isinstance(tracker, Tracker):
            raise ConfigError(f"tracker {name!r} does not implement the Tracker protocol (propagate)")
        try:
            detector = load_detector(checkpoint)
        except (RuntimeError, KeyError) as e:
            raise ValueError(f"{checkpoint}: cannot load detector checkpoint ({type(e).__name__}: {e})") from None
        if list(detector.class_names) != list(dataset.classes):
            raise ValueError(f"{checkpoint}: detector classes {detector.class_names} differ from the dataset's "
                             f"{dataset.classes} ({dataset.paths[0]})")

    n_total = len(dataset) if max_frames is None else min(max_frames, len(dataset))
    videos, n_frames = [], {}
    for v, info in enumerate(dataset.videos):
        if info.offset >= n_total:
            break
        videos.append(v)
        n_frames[v] = min(info.n_frames, n_total - info.offset)
    frames = np.arange(n_total, dtype=np.int64)
    out = Path(out) if out else Path("work_dirs/estimate_errors") / f"{Path(config).stem}_{split}_{name}"
    out.mkdir(parents=True, exist_ok=True)

    click.echo(f"predicting {n_total} frames of {dataset.paths[0]} ({len(videos)} videos) with {checkpoint}")
    t0, c0 = time.perf_counter(), time.process_time()
    preds = predict_frames(detector, dataset, frames, batch_size=batch_size, progress=not quiet)
    t_predict, c_predict = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    with one_line_errors(ValueError, OSError):
        result = tc.estimate(dataset, preds, tracker, videos=videos, n_frames=n_frames, progress=not quiet)
    t_tc, c_tc = time.perf_counter() - t0, time.process_time() - c0

    has_gt = any(len(dataset.annotations(v)["boxes"]) for v in videos)
    metrics = evaluate_estimates(result, dataset.ground_truth, preds, frames) if has_gt else None
    est_fp, est_fn = result.counts(frames)
    per_frame = metrics.pop("per_frame") if metrics else {"index": frames, "est_fp": est_fp, "est_fn": est_fn}

    # overlays: frames with the most estimated errors (FP + FN, then FP, then frame order)
    order = np.lexsort((frames, -est_fp, -(est_fp + est_fn)))
    chosen = [int(frames[k]) for k in order[:overlays] if est_fp[k] + est_fn[k] > 0]
    written = []
    for i in chosen:
        v, t = dataset.locate(i)
        fe = result.frame(i)
        title = (f"{dataset.videos[v].name} frame {t}: est FP {fe.est_fp}, est FN {fe.est_fn}"
                 + (f" | real FP {per_frame['real_fp'][i]}, missed GT {per_frame['real_fn'][i]}" if metrics else ""))
        img = overlay_frame_errors(dataset.image(i), preds[i], fe, gt=dataset.ground_truth(i) if has_gt else None,
                                   class_names=dataset.classes, title=title)
        written.append(str(save_png(out / "overlays" / f"{i:06d}_{dataset.videos[v].name}_f{t:04d}.png", img)))

    report = {
        "command": command_line(),
        "config": str(config), "checkpoint": str(checkpoint), "split": split, "dataset": dataset.paths[0],
        "tracker": {"name": name, **tracker_options},
        "temporal_coherence": tc.params,
        "frames": int(n_total), "videos": len(videos),
        "graph": result.summary(),
        "seconds": {"predict": round(t_predict, 3), "temporal_coherence": round(t_tc, 3),
                    "tc_over_predict": round(t_tc / t_predict, 5) if t_predict > 0 else None,
                    # CPU seconds of this process (all threads): comparable when other jobs share the CPU
                    "predict_cpu": round(c_predict, 3), "temporal_coherence_cpu": round(c_tc, 3),
                    "tc_over_predict_cpu": round(c_tc / c_predict, 5) if c_predict > 0 else None},
        "metrics": metrics,
        "per_frame": {k: np.asarray(v).tolist() for k, v in per_frame.items()},
        "overlays": written,
    }
    path = out / "errors.json"
    path.write_text(json.dumps(json_safe(report), indent=1))
    s = result.summary()
    click.echo(f"{s['detections']} detections, {s['candidates']} candidates: estimated {s['est_fp']} FP, "
               f"{s['est_fn']} FN; temporal coherence {t_tc:.2f} s vs detector {t_predict:.2f} s "
               f"({100 * t_tc / max(t_predict, 1e-9):.1f} %; CPU {c_tc:.2f} s vs {c_predict:.2f} s, "
               f"{100 * c_tc / max(c_predict, 1e-9):.1f} %)")
    if metrics:
        def f(x):
            return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"
        click.echo(f"FP: precision {f(metrics['fp_precision'])} (base rate {f(metrics['fp_base_rate'])}), recall "
                   f"{f(metrics['fp_recall'])}, Spearman {f(metrics['spearman_fp'])}; FN: precision "
                   f"{f(metrics['fn_precision'])}, recall {f(metrics['fn_recall'])}, Spearman {f(metrics['spearman_fn'])}")
    click.echo(f"wrote {path}" + (f" and {len(written)} overlays in {out / 'overlays'}" if written else ""))


if __name__ == "__main__":
    main()
