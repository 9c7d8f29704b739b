"""Export an annotation job of a human-oracle AL run (al.oracle="human") for a labelling tool.

    python tools/export_selection.py runs/mine --format label-studio --out to_label/job1
    python tools/export_selection.py runs/mine --cycle 0 --format cvat --out to_label/job0 --context 2

Writes the job's frames as PNG images plus the tool's task file (Label Studio tasks.json and
label_config.xml, CVAT for images 1.1 annotations.xml, or COCO annotations.json); the model's
detections come as pre-annotations. --cycle N: the job cycle N trains on (0: the cold-start set;
default: the latest job). Formats and rules: vidal/annotation_io.py.
"""

from __future__ import annotations

import click

from vidal.cli import IntInRange, one_line_errors
from vidal.data.dataset import DatasetFormatError
from vidal.loop import ExperimentError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("work_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--cycle", "number", type=IntInRange(0), default=None,
              help="The job whose labels cycle N trains on [default: the latest job].")
@click.option("--format", "fmt", required=True, type=click.Choice(["label-studio", "cvat", "coco"]))
@click.option("--out", required=True, type=click.Path(file_okay=True), help="New folder for images and task file.")
@click.option("--context", type=IntInRange(0, 50), default=0, show_default=True,
              help="Also export N neighbouring frames on each side of every frame (context/, no tasks).")
@click.option("--url-prefix", default="/data/local-files/?d=", show_default=True,
              help="Label Studio: prefix of data.image before 'images/<video>/<frame>.png' (the default serves "
                   "them as local files: start label-studio with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
                   "and LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<--out>).")
@click.option("--min-score", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Pre-annotate with the detections scored at least this (0: every detection the model keeps).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(work_dir, number, fmt, out, context, url_prefix, min_score, quiet):
    """Export an annotation job of the run in WORK_DIR into the folder --out."""
    from vidal.annotation_io import export_job
    from vidal.data.validate import open_dataset
    from vidal.human import LabelStore, pick_job, work_dir_of
    from vidal.workdir import read_work_file

    with one_line_errors(ExperimentError, DatasetFormatError, FileExistsError, FileNotFoundError, ValueError):
        root = work_dir_of(work_dir)
        job = pick_job(root, number)
        from vidal.config import load_config

        cfg = read_work_file(root / "config.py", lambda p: load_config(p))
        dataset = open_dataset(cfg["dataset"]["train"])
        summary = export_job(job, dataset, fmt, out, context=context, url_prefix=url_prefix, min_score=min_score,
                             progress=not quiet)
        labeled, pending, dropped = LabelStore(root).status(job)
    click.echo(f"job {job['number']}: {summary['images']} frames ({len(pending)} pending, {len(labeled)} labeled), "
               f"{summary['context']} context frames -> {summary['out']}")
    click.echo(f"wrote {summary['task_file']}")


if __name__ == "__main__":
    main()
