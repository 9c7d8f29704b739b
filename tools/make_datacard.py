"""Write the data card of a ``vidal-video-v1`` dataset from its split files.

    python tools/make_datacard.py out/train.h5 out/test.h5 --out data_cards --name synthia-al-mini

Writes ``DIR/NAME.md`` (figures per split and subset, provenance) and ``DIR/NAME_montage.png``
(sample frames with their boxes), and prints both paths. The files are checked first
(vidal.data.validate, one line naming the file, the video and the field); existing outputs are
kept unless ``--overwrite``; both files are written in a temporary folder and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import click

from synth.datacard import write_datacard
from vidal.cli import SEED, one_line_errors
from vidal.data.dataset import DatasetFormatError
from vidal.data.h5format import video_name_problem
from vidal.data.validate import validated


@click.command()
@click.argument("split_files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the card and the montage into (created if missing).")
@click.option("--name", required=True, help="Card name: writes NAME.md and NAME_montage.png.")
@click.option("--redundancy-pairs", default=200, show_default=True, type=click.IntRange(min=0),
              help="Consecutive frame pairs sampled per split and per subset for the pixel redundancy.")
@click.option("--montage-tiles", default=12, show_default=True, type=click.IntRange(min=1),
              help="Sample frames in the montage.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the frame samples.")
@click.option("--overwrite", is_flag=True, help="Replace an existing NAME.md / NAME_montage.png.")
def main(split_files: tuple[Path, ...], out_dir: Path, name: str, redundancy_pairs: int,
         montage_tiles: int, seed: int, overwrite: bool) -> None:
    """Write the data card of SPLIT_FILES (e.g. train.h5 test.h5)."""
    with one_line_errors(DatasetFormatError, ValueError, OSError):
        problem = video_name_problem(name)
        if problem:
            raise ValueError(f"--name: {problem}; expected a plain file name such as synthia-al-mini")
        md_path, png_path = out_dir / f"{name}.md", out_dir / f"{name}_montage.png"
        existing = [str(p) for p in (md_path, png_path) if p.exists()]
        if existing and not overwrite:
            raise ValueError(f"{existing[0]} exists; pass --overwrite to replace it, or choose another --out / --name")
        paths = [Path(p) for p in validated(split_files)]
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name}.tmp-"))
        try:
            md_tmp, png_tmp = write_datacard(paths, tmp, name=name, redundancy_pairs=redundancy_pairs, seed=seed,
                                             montage_tiles=montage_tiles)
            os.replace(png_tmp, png_path)
            os.replace(md_tmp, md_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    click.echo(f"wrote {md_path}")
    click.echo(f"wrote {png_path}")


if __name__ == "__main__":
    main()
