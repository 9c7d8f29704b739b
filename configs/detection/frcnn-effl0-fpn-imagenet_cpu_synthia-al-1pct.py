_base_ = ["../_base_/datasets/synthia-al-1pct.py", "../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
          "../_base_/schedules/cpu-mini.py"]
