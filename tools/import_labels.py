"""Import the annotators' boxes of an annotation job into a human-oracle AL run's labels.json.

    python tools/import_labels.py runs/mine project-1-export.json --format label-studio
    python tools/import_labels.py runs/mine annotations.xml --format cvat
    python tools/import_labels.py runs/mine --drop-pending        # give up the frames still unlabeled

Then continue the run with tools/run_al.py ... --resume. Class names are mapped by name; a frame of
another job, an unknown class or a box outside the image is one line naming the task, and nothing
is changed. Frames the file leaves out stay pending; importing the same file twice changes nothing.
The pool file is never modified. Rules: vidal/annotation_io.py, vidal/human.py.
"""

from __future__ import annotations

import click

from vidal.cli import IntInRange, one_line_errors
from vidal.human import LabelError
from vidal.locking import FolderLockedError
from vidal.loop import ExperimentError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("work_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["label-studio", "cvat", "coco"]), default=None,
              help="Format of FILE (required with FILE).")
@click.option("--cycle", "number", type=IntInRange(0), default=None,
              help="The job whose labels cycle N trains on [default: the latest job].")
@click.option("--drop-pending", is_flag=True,
              help="Give up the job's frames that are still unlabeled (they return to the unlabeled pool).")
def main(work_dir, file, fmt, number, drop_pending):
    """Import FILE (the labelling tool's export) into the run in WORK_DIR."""
    from vidal.human import import_labels

    if file is None and not drop_pending:
        raise click.UsageError("give FILE (with --format) or --drop-pending")
    if file is not None and fmt is None:
        raise click.UsageError("--format label-studio|cvat|coco is required with FILE")
    with one_line_errors(LabelError, ExperimentError, FolderLockedError):
        s = import_labels(work_dir, file, fmt, number=number, drop_pending=drop_pending)
    click.echo(f"job {s['job']}: {s['new']} frames newly labeled, {s['changed']} changed; {s['labeled']} of "
               f"{s['frames']} labeled, {s['pending']} pending, {s['dropped']} dropped -> {s['labels']}")
    if s["pending"]:
        click.echo(f"{s['pending']} frames are still pending: import their labels, or --drop-pending, then resume "
                   f"the run with --resume")
    else:
        click.echo("the job is complete: continue the run with tools/run_al.py ... --resume")


if __name__ == "__main__":
    main()
