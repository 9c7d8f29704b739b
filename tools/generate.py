"""Generate a SYNTHIA-AL-style driving-video dataset (train.h5, test.h5, data card).

    python tools/generate.py --preset synthia-al --scale 0.01 --out data/synthia-al-1pct
    python tools/generate.py --preset synthia-al --out data/synthia-al --backend ray [--address HEAD:6379]

``--backend ray`` (pip install 'vidal[ray]') renders each sequence as a Ray task; the files are
byte-identical to a local run's with the same --workers (the recorded command leaves out --backend and --address,
which do not change them).
"""

from __future__ import annotations

import os

import click

from synth.generate import GenerateError, generate_dataset
from synth.scenario import ScenarioError, available_presets
from vidal.cli import SEED, command_line, one_line_errors


def without_options(command: str, names: tuple[str, ...]) -> str:
    """``command`` without the options ``names`` and their values (``--x v`` or ``--x=v``): how
    the work was spread does not change the dataset, so it is not recorded in it."""
    words, out, skip = command.split(" "), [], False
    for w in words:
        if skip:
            skip = False
        elif w in names:
            skip = True
        elif not any(w.startswith(n + "=") for n in names):
            out.append(w)
    return " ".join(out)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--preset", default="synthia-al", show_default=True,
              help=f"Scenario preset ({', '.join(available_presets())}) or path to a scenario .toml file.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Fraction of the full preset's frames (0.01 = 1 %); sequences and lengths shrink together.")
@click.option("--resolution", default="640x480", show_default=True, help="Frame size WxH.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed; same seed, same dataset.")
@click.option("--workers", type=int, default=os.cpu_count() or 1, show_default=True,
              help="Worker processes rendering sequences in parallel.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing train.h5 / test.h5 in --out.")
@click.option("--masks", is_flag=True, help="Also store instance masks (uint16 track ids).")
@click.option("--depth", is_flag=True, help="Also store depth maps (metres).")
@click.option("--flow", is_flag=True, help="Also store exact forward optical flow between consecutive frames.")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default="gzip", show_default=True,
              help="HDF5 filter of the frames (both readable by plain h5py).")
@click.option("--no-datacard", is_flag=True, help="Skip the data card.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: --workers processes here; ray: one Ray task per sequence (pip install 'vidal[ray]').")
@click.option("--address", default=None, help="--backend ray: the Ray cluster (HEAD:6379); default: a local one.")
def main(preset, scale, resolution, seed, workers, out, overwrite, masks, depth, flow, compression,
         no_datacard, quiet, backend, address):
    """Generate train.h5 / test.h5 in vidal-video-v1 format and a data card into OUT."""
    from vidal.ray_support import RayMissingError

    command = without_options(command_line(), ("--backend", "--address"))
    with one_line_errors(ScenarioError, GenerateError, RayMissingError):
        summary = generate_dataset(preset=preset, out=out, scale=scale, resolution=resolution, seed=seed,
                                   workers=workers, overwrite=overwrite, masks=masks, depth=depth,
                                   flow=flow, compression=compression, datacard=not no_datacard,
                                   command=command, progress=not quiet, backend=backend, address=address)
    click.echo(f"{summary['sequences']} sequences, {summary['frames']} frames, {summary['boxes']} boxes "
               f"in {summary['seconds']} s ({summary['frames_per_second']} frames/s, "
               f"{summary['bytes_per_frame']} bytes/frame)")
    for split, path in summary["files"].items():
        click.echo(f"wrote {path}")
    if "data_card" in summary:
        click.echo(f"data card: {summary['data_card']} (montage {summary['montage']})")


if __name__ == "__main__":
    main()
