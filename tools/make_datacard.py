"""Write the data card of a ``vidal-video-v1`` dataset from its split files.

    python tools/make_datacard.py out/train.h5 out/test.h5 --out data_cards --name synthia-al-mini

Writes ``DIR/NAME.md`` (figures per split and subset, provenance) and ``DIR/NAME_montage.png``
(sample frames with their boxes), and prints both paths.
"""

from __future__ import annotations

from pathlib import Path

import click

from synth.datacard import write_datacard


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
@click.option("--seed", default=0, show_default=True, help="Seed of the frame samples.")
def main(split_files: tuple[Path, ...], out_dir: Path, name: str, redundancy_pairs: int,
         montage_tiles: int, seed: int) -> None:
    """Write the data card of SPLIT_FILES (e.g. train.h5 test.h5)."""
    md_path, png_path = write_datacard(list(split_files), out_dir, name=name, redundancy_pairs=redundancy_pairs,
                                       seed=seed, montage_tiles=montage_tiles)
    click.echo(f"wrote {md_path}")
    click.echo(f"wrote {png_path}")


if __name__ == "__main__":
    main()
