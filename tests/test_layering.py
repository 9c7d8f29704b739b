"""Layering: vidal owns the ``vidal-video-v1`` format (reading and writing, vidal/data/) and never
imports synth; synth, the generator, depends on vidal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vidal", "vidal.data", "vidal.data.writer", "vidal.loop", "vidal.build", "vidal.acquisition",
            "vidal.tracking", "vidal.evaluation")
SYNTH_IMPORT = re.compile(r"^\s*(import\s+synth\b|from\s+synth\b)", re.MULTILINE)


def test_importing_vidal_loads_no_synth_module():
    code = (f"import sys, {', '.join(PACKAGES)}\n"
            "bad = sorted(m for m in sys.modules if m == 'synth' or m.startswith('synth.'))\n"
            "assert not bad, bad\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_no_file_under_vidal_imports_synth():
    offenders = [f"{p.relative_to(REPO)}: {m.group(0).strip()}"
                 for p in sorted((REPO / "vidal").rglob("*.py"))
                 for m in SYNTH_IMPORT.finditer(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders


def test_synth_writes_through_vidals_writer():
    import synth.generate
    import synth.sequence
    from vidal.data import writer

    assert synth.sequence.ShardWriter is writer.ShardWriter
    assert synth.generate.merge_shards is writer.merge_shards
    assert not (REPO / "synth" / "writer.py").exists()
