"""Wall time of an AL grid on this machine: runs tools/run_grid.py and prints the minutes.

    python benchmarks/bench_grid.py [--work-dir work_dirs/bench-grid] [--seeds 0,1,2]
        [--methods random,random-r,entropy-mean,oracle-fp,tc-flow] [--configs configs/al/cpu] [--workers 2]

The default is the five-method core grid of the CPU protocol (configs/al/cpu) x 3 seeds without the
all-data reference (issue target: <= 90 minutes on 2 cores). Give a fresh --work-dir: a grid that
already ran is skipped and its time would mean nothing. Prints one JSON line: wall minutes, the
number of runs, and per job its minutes (from the grid's own log).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
CORE = "random,random-r,entropy-mean,oracle-fp,tc-flow"


@click.command()
@click.option("--work-dir", default="work_dirs/bench-grid", show_default=True, type=click.Path(file_okay=False))
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--methods", default=CORE, show_default=True)
@click.option("--configs", default=str(REPO / "configs" / "al" / "cpu"), show_default=True)
@click.option("--workers", default=2, show_default=True, type=int)
def main(work_dir, seeds, methods, configs, workers):
    if Path(work_dir).exists() and any(Path(work_dir).iterdir()):
        raise click.ClickException(f"{work_dir} is not empty: a benchmark needs a fresh --work-dir")
    cmd = [sys.executable, str(REPO / "tools" / "run_grid.py"), configs, "--seeds", seeds, "--methods", methods,
           "--workers", str(workers), "--no-reference", "--work-dir", work_dir]
    t = time.perf_counter()
    res = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    minutes = (time.perf_counter() - t) / 60
    sys.stderr.write(res.stderr[-3000:])
    jobs = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+)\s+done\s+([\d.]+) min", res.stderr, re.M)}
    print(json.dumps({"bench": "grid", "wall_minutes": round(minutes, 2), "exit": res.returncode, "runs": len(jobs),
                      "job_minutes": jobs, "methods": methods, "seeds": seeds, "workers": workers,
                      "cores": len(os.sched_getaffinity(0)), "machine": platform.machine()}))


if __name__ == "__main__":
    main()
