"""Train the SiamFC tracker's network on a dataset's ground-truth tracks.

    python tools/train_siamfc.py data/synthia-al-1pct/train.h5 --out work/siamfc.pth --epochs 20

Writes a plain state dict in the layout the siamfc tracker loads (vidal/tracking/siamfc.py), next
to it WEIGHTS.json (losses, options, command, versions), and prints where they went.
"""

from __future__ import annotations

import json
import os
import time

import click
import torch
from tqdm import tqdm

import vidal
from vidal.cli import DEVICE, POSITIVE_INT, SEED, command_line, one_line_errors
from vidal.data.dataset import DatasetFormatError
from vidal.data.validate import open_dataset
from vidal.tracking.siamfc import SiamFCWeightsError, load_siamfc
from vidal.tracking.train_siamfc import train_siamfc


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Output .pth state dict.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--pairs-per-epoch", type=int, default=512, show_default=True)
@click.option("--batch-size", type=POSITIVE_INT, default=8, show_default=True)
@click.option("--lr", type=float, default=1e-2, show_default=True, help="Initial SGD learning rate.")
@click.option("--lr-end", type=float, default=1e-5, show_default=True, help="Learning rate of the last epoch.")
@click.option("--max-gap", type=int, default=10, show_default=True, help="Max frames between exemplar and search.")
@click.option("--init", "init", type=click.Path(dir_okay=False), default=None,
              help="Start from these weights (fine-tuning) instead of a random initialisation.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(dataset, out, epochs, pairs_per_epoch, batch_size, lr, lr_end, max_gap, init, seed, device, overwrite,
         quiet):
    """Train SiamFC (balanced logistic loss on the response map) on pairs of DATASET's tracks."""
    command = command_line()
    with one_line_errors(DatasetFormatError, FileNotFoundError, SiamFCWeightsError, ValueError):
        if os.path.exists(out) and not overwrite:
            raise ValueError(f"{out} exists; pass --overwrite to replace it")
        ds = open_dataset(dataset)
        net = load_siamfc(init) if init else None
        steps = epochs * -(-pairs_per_epoch // batch_size)
        bar = tqdm(total=steps, desc="siamfc", unit="step", disable=quiet)

        def on_step(epoch, step, loss):
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}")

        start = time.perf_counter()
        try:
            net, history = train_siamfc(ds, net=net, epochs=epochs, pairs_per_epoch=pairs_per_epoch,
                                        batch_size=batch_size, lr=lr, lr_end=lr_end, max_gap=max_gap, seed=seed,
                                        device=device, on_step=on_step)
        finally:
            bar.close()
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        tmp = out + ".partial"
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
        os.replace(tmp, out)
        meta = {"epoch_losses": history, "epochs": epochs, "pairs_per_epoch": pairs_per_epoch,
                "batch_size": batch_size, "lr": lr, "lr_end": lr_end, "max_gap": max_gap, "seed": seed,
                "init": init, "dataset": os.path.abspath(dataset), "seconds": round(time.perf_counter() - start, 2),
                "command": command, "created_by": f"vidal {vidal.__version__}", "torch": torch.__version__}
        meta_path = os.path.splitext(out)[0] + ".json"
        with open(meta_path, "w") as f:
            json.dump(meta, f, indent=1)
    click.echo(json.dumps({"epoch_losses": [round(x, 5) for x in history]}))
    click.echo(f"wrote {out}")
    click.echo(f"wrote {meta_path}")


if __name__ == "__main__":
    main()
