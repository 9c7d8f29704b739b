"""Ray, the optional extra ``vidal[ray]`` (issue 18): grids (``tools/run_grid.py --backend ray``)
and dataset generation (``tools/generate.py --backend ray``) fanned out over a Ray cluster.

Each unit of work is a Ray task that asks for its CPUs (and GPUs): a grid job is the same
``tools/run_al.py`` process the local pool runs (:class:`vidal.grid.RayGridRunner`), a sequence
of the generator the same render call. Every task reads and writes the paths the local run
would, so on a cluster the output folders must be on a file system every node sees, and the
nodes need the same Python environment (``ray start --head`` / ``ray start --address ...``,
then ``--address HEAD:6379``).
"""

from __future__ import annotations

from typing import Any

INSTALL = "pip install 'vidal[ray]' (or pip install ray)"


class RayMissingError(RuntimeError):
    """``--backend ray`` without Ray installed: one line naming the install command."""


def require_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`RayMissingError` naming the install command."""
    try:
        import ray
    except ImportError:
        raise RayMissingError(f"--backend ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def init_ray(address: str | None = None, **kwargs: Any) -> Any:
    """Connect to the Ray cluster at ``address`` (None: start a local one on this machine,
    ``kwargs`` such as ``num_cpus`` passed on) unless this process is connected already."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else kwargs))
    return ray
