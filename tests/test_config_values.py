"""Config values are checked strictly before anything is written (issue 15 item 4): unknown
top-level sections, wrong types (no string where a number or tuple is meant, no bool where an int
is meant), out-of-range schedule numbers; each a one-line ConfigError naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidal.build import check_detector
from vidal.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]
BASE = (f"_base_ = ['{REPO}/configs/_base_/detectors/frcnn-effl0-fpn_cpu.py', "
        f"'{REPO}/configs/_base_/schedules/cpu-mini.py']\n")


def test_unknown_top_level_section_is_an_error(tmp_path):
    c = tmp_path / "c.py"
    c.write_text(BASE + "bogus = dict()\n_helper = 3\n")
    with pytest.raises(ConfigError, match=rf"^{c}: unknown top-level section 'bogus'; valid sections: dataset, "):
        load_config(c)


@pytest.mark.parametrize("option, message", [
    ("schedule.lr='fast'", "lr must be a finite number, got 'fast'"),
    ("schedule.lr=float('nan')", "lr must be a finite number"),
    ("schedule.lr=0", "lr is the learning rate, > 0, got 0"),
    ("schedule.epochs=1e9", "epochs must be an integer, got 1000000000.0"),
    ("schedule.epochs=10**9", "epochs must be an integer"),          # not a literal: kept as a string
    ("schedule.epochs=1000000", "epochs is the number of epochs, 1..10000, got 1000000"),
    ("schedule.epochs=True", "epochs must be an integer, got True"),
    ("schedule.batch_size=1.5", "batch_size must be an integer, got 1.5"),
    ("schedule.batch_size=0", "batch_size is frames per batch, 1..4096, got 0"),
    ("schedule.milestones='12'", "milestones must be a list of integers such as (5, 7), got '12'"),
    ("schedule.milestones=(0, 2)", "milestones are the epochs (>= 1)"),
    ("schedule.momentum=1.5", "momentum is the SGD momentum, in [0, 1), got 1.5"),
    ("schedule.grad_clip='x'", "grad_clip must be a finite number or None, got 'x'"),
    ("detector.height='300'", "height must be an integer, got '300'"),
])
def test_schedule_and_detector_values_are_checked(tmp_path, option, message):
    c = tmp_path / "c.py"
    c.write_text(BASE)
    cfg = load_config(c, [option])
    with pytest.raises(ConfigError) as e:
        check_detector(cfg)
    line = str(e.value)
    assert line.startswith(f"{c}: detector: ") and message in line and "\n" not in line


def test_tracker_spec_one_builder_for_the_loop_and_the_tools():
    """vidal.build.tracker_spec: the section's name and options, a tool's --tracker overriding the
    name (the section's options then apply only to the same tracker), strict keys, clear names."""
    from vidal.build import tracker_spec

    cfg = {"_config_path_": "exp.py", "tracker": {"name": "flow", "mode": "median"}}
    assert tracker_spec(cfg) == ("flow", {"mode": "median"})
    assert tracker_spec(cfg, name="flow") == ("flow", {"mode": "median"})
    assert tracker_spec(cfg, name="identity") == ("identity", {})
    assert tracker_spec({"_config_path_": "exp.py"}) is None
    assert tracker_spec({"_config_path_": "exp.py"}, default="identity") == ("identity", {})
    with pytest.raises(ConfigError, match=r"^exp.py: tracker \(flow\): unknown key\(s\) speed; valid keys: "):
        tracker_spec({"_config_path_": "exp.py", "tracker": {"name": "flow", "speed": 2}})
    with pytest.raises(ConfigError, match=r"^--tracker: tracker.name: .*bogus"):
        tracker_spec(cfg, name="bogus")
    with pytest.raises(ConfigError, match=r"^exp.py: no 'tracker' section"):
        tracker_spec({"_config_path_": "exp.py"}, required=True)
