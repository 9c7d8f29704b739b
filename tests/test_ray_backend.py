"""Grids and generation on Ray (issue 18, the extra ``vidal[ray]``), on a local Ray instance
(``ray.init(num_cpus=2)``, started and shut down by the module): a grid of two methods x one seed
(real ``run_al.py`` processes with the scripted double detector) ends with the same rows and
files as the local process pool and skips finished jobs when rerun; a Ray-generated dataset is
byte-identical to a local one; without Ray, ``--backend ray`` is one line naming the install."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from double_detector import double_al_config
from tiny_videos import write_split

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "run_al_double.py"


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vidal[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def grid_configs(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raygrid")
    write_split(root / "train.h5", [6, 10, 14, 12], 0, "train")
    write_split(root / "test.h5", [6, 6], 1, "test")
    cfgs = root / "cfgs"
    cfgs.mkdir()
    (cfgs / "_protocol.py").write_text(double_al_config(root, epochs=1))
    methods = {}
    for name, acq in [("random-r", 'dict(name="random_r")'), ("entropy", 'dict(name="entropy")')]:
        methods[name] = cfgs / f"{name}.py"
        methods[name].write_text(f'_base_ = ["_protocol.py"]\nacquisition = {acq}\n')
    return root, methods


def _run_grid(runner_cls, methods, grid: Path, **kw):
    from vidal.grid import plan

    jobs = plan(methods, [0], grid, reference=False)
    runner = runner_cls(jobs, workers=2, threads=1, cycles=2, log_dir=grid / "logs", script=SCRIPT, poll_s=0.2, **kw)
    runner.run()
    return jobs


def _rows(grid: Path, method: str) -> list[dict]:
    rows = [json.loads(x) for x in (grid / method / "seed0" / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time_")} for r in rows]


def _files(grid: Path) -> set[str]:
    return {str(p.relative_to(grid)) for p in grid.rglob("*") if p.is_file() and p.name not in (".lock",)}


def test_a_grid_on_ray_ends_with_the_local_pool_rows(ray, grid_configs, tmp_path):
    from vidal.grid import GridRunner, RayGridRunner

    _, methods = grid_configs
    local, remote = tmp_path / "local", tmp_path / "ray"
    jobs = _run_grid(GridRunner, methods, local)
    assert [j.state for j in jobs] == ["done"] * 3, [(j.name, j.message) for j in jobs]
    jobs = _run_grid(RayGridRunner, methods, remote)
    assert [j.state for j in jobs] == ["done"] * 3, [(j.name, j.message) for j in jobs]
    for m in methods:
        assert len(_rows(remote, m)) == 3 and _rows(remote, m) == _rows(local, m)
    assert _files(remote) == _files(local)  # the same work-dir layout
    # rerun: every job is finished, nothing is submitted
    events = []
    from vidal.grid import plan

    jobs = plan(methods, [0], remote, reference=False)
    RayGridRunner(jobs, workers=2, threads=1, cycles=2, log_dir=remote / "logs", script=SCRIPT,
                  on_event=lambda j, t: events.append(t)).run()
    assert events == ["done"] * 3 and all(j.message == "finished before" for j in jobs)


def test_a_ray_generated_dataset_is_byte_identical_to_a_local_one(ray, tmp_path):
    from synth.generate import generate_dataset

    kw = dict(preset="synthia-al", scale=0.001, resolution="96x64", seed=4, workers=2, progress=False,
              datacard=False, command="tests")
    generate_dataset(out=tmp_path / "local", **kw)
    generate_dataset(out=tmp_path / "ray", backend="ray", **kw)
    for split in ("train.h5", "test.h5"):
        a, b = (hashlib.sha256((tmp_path / d / split).read_bytes()).hexdigest() for d in ("local", "ray"))
        assert a == b, split


def test_backend_ray_without_ray_is_one_line_naming_the_install(grid_configs, tmp_path):
    fake = tmp_path / "noray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    env = {**os.environ, "PYTHONPATH": f"{fake}{os.pathsep}{REPO}"}
    root, _ = grid_configs
    for cmd in ([REPO / "tools" / "run_grid.py", root / "cfgs", "--work-dir", tmp_path / "g", "--backend", "ray"],
                [REPO / "tools" / "generate.py", "--out", tmp_path / "d", "--scale", "0.001", "--backend", "ray"]):
        r = subprocess.run([sys.executable, *map(str, cmd)], env=env, capture_output=True, text=True, timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1 and "pip install 'vidal[ray]'" in lines[0], r.stderr
    assert not (tmp_path / "g").exists() and not (tmp_path / "d").exists()


def test_the_recorded_generate_command_leaves_out_where_it_ran():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from generate import without_options
    finally:
        sys.path.remove(str(REPO / "tools"))
    cmd = "python tools/generate.py --out d --backend ray --address=h:6379 --workers 4 --seed 1"
    assert without_options(cmd, ("--backend", "--address")) == "python tools/generate.py --out d --workers 4 --seed 1"
