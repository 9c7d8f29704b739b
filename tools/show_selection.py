"""Montage of the frames an AL run selected, with the model's detections and, for temporal
coherence, its estimated false positives (purple) and false negatives (green) per box (thesis
Fig. 2.3 colours; ground truth or imported labels in yellow).

    python tools/show_selection.py runs/tc/seed0 --cycle 2 --out tc_cycle2.png
    python tools/show_selection.py runs/mine --out job.png          # the latest job / selection

--cycle N: the frames cycle N trains on in addition to the earlier ones (the selection of cycle
N-1; with al.oracle="human", annotation job N, 0 being the cold start). Rules: vidal/montage.py.
"""

from __future__ import annotations

import click

from vidal.cli import IntInRange, one_line_errors
from vidal.config import ConfigError
from vidal.data.dataset import DatasetFormatError
from vidal.loop import ExperimentError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("work_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--cycle", type=IntInRange(0), default=None, help="The frames added for cycle N [default: the latest].")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output PNG.")
@click.option("--max-frames", type=IntInRange(1), default=24, show_default=True, help="Show at most this many.")
@click.option("--min-score", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Draw the detections scored at least this (TC: the detections of its graph).")
def main(work_dir, cycle, out, max_frames, min_score):
    """Write the montage of WORK_DIR's selected frames to --out."""
    from vidal.montage import show_selection

    with one_line_errors(ExperimentError, ConfigError, DatasetFormatError, FileNotFoundError):
        s = show_selection(work_dir, out, cycle, max_frames=max_frames, min_score=min_score)
    click.echo(f"cycle {s['cycle']}: {s['frames']} frames from {s['source']}"
               f"{' with per-box TC estimates' if s['tc_boxes'] else ''} -> {s['out']}")


if __name__ == "__main__":
    main()
