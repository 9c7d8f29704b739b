"""Box-propagation accuracy of trackers on a dataset's ground-truth tracks (one JSON line each).

    python tools/eval_tracker.py data/synthia-al-1pct/train.h5 --tracker identity --tracker flow
    python tools/eval_tracker.py train.h5 --tracker flow --flow train.flow.h5 --mode median --deltas 1,3,-3
    python tools/eval_tracker.py train.h5 --tracker siamfc --siamfc-weights work/siamfc.pth --frame-step 10

For every ground-truth box of frame t whose track is also annotated in t + delta: IoU of the
propagated box with the ground truth there (vidal/tracking/evaluate.py); prints mean IoU and the
fraction above --threshold per tracker and per delta.
"""

from __future__ import annotations

import json
import time

import click

from vidal.cli import DEVICE, one_line_errors
from vidal.data.dataset import DatasetFormatError
from vidal.data.validate import open_dataset
from vidal.registry import TRACKERS
from vidal.tracking.evaluate import propagation_iou  # importing vidal.tracking registers the trackers
from vidal.tracking.flow_cache import FlowCacheError
from vidal.tracking.siamfc import SiamFCWeightsError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--tracker", "trackers", multiple=True, default=["identity", "flow"], show_default=True,
              help="Tracker name (repeat): identity, flow, siamfc.")
@click.option("--flow", type=click.Path(dir_okay=False), default=None,
              help="Flow cache of the flow tracker [default: next to DATASET].")
@click.option("--mode", type=click.Choice(["center", "median"]), default="center", show_default=True,
              help="Flow tracker: flow at the box centre or median flow inside the box.")
@click.option("--siamfc-weights", type=click.Path(dir_okay=False), default=None, help="SiamFC state dict.")
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="Torch device of SiamFC.")
@click.option("--deltas", default="1,3,-1,-3", show_default=True, help="Comma-separated frame offsets.")
@click.option("--frame-step", type=int, default=1, show_default=True, help="Use every k-th source frame.")
@click.option("--threshold", type=float, default=0.5, show_default=True)
def main(dataset, trackers, flow, mode, siamfc_weights, device, deltas, frame_step, threshold):
    """Print the propagation IoU of each --tracker on DATASET's ground-truth tracks."""
    with one_line_errors(DatasetFormatError, FileNotFoundError, FlowCacheError, SiamFCWeightsError, ValueError):
        ds = open_dataset(dataset)
        offsets = tuple(int(d) for d in deltas.split(","))
        unknown = [n for n in trackers if n not in TRACKERS]
        if unknown:
            raise ValueError(f"unknown tracker {unknown[0]!r}; valid names: {', '.join(TRACKERS.names())}")
        for name in trackers:
            options = {"flow": flow, "mode": mode} if name == "flow" else {}
            if name == "siamfc":
                options = {"weights": siamfc_weights, "device": device}
            tracker = TRACKERS.get(name).for_dataset(ds, **options)
            start = time.perf_counter()
            res = propagation_iou(tracker, ds, deltas=offsets, frame_step=frame_step, threshold=threshold)
            row = {"tracker": name, **({"mode": mode} if name == "flow" else {}),
                   "mean_iou": round(res["mean_iou"], 4), f"frac_iou_gt_{threshold}": round(res["frac_above"], 4),
                   "pairs": res["pairs"], "lost": res["lost"], "seconds": round(time.perf_counter() - start, 3),
                   "per_delta": {str(d): round(r["mean_iou"], 4) for d, r in res["per_delta"].items()}}
            click.echo(json.dumps(row))


if __name__ == "__main__":
    main()
