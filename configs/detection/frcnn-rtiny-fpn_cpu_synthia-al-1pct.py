_base_ = ["../_base_/datasets/synthia-al-1pct.py", "../_base_/detectors/frcnn-rtiny-fpn_cpu.py",
          "../_base_/schedules/cpu-scratch.py"]
