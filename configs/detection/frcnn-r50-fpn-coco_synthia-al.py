_base_ = ["../_base_/datasets/synthia-al.py", "../_base_/detectors/frcnn-r50-fpn_coco.py",
          "../_base_/schedules/thesis-synthia-al.py"]
