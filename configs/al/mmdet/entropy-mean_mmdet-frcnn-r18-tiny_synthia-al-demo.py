# CPU smoke run of the MMDetection backend: entropy-mean on the demo dataset (tools/demo.py makes it) with a
# weights-free tiny mmdet Faster R-CNN; checks the OpenMMLab environment end to end in minutes (the tiny
# model learns little). .venv-mmdet/bin/python tools/run_al.py THIS_FILE --work-dir DIR --seed 0
_base_ = [
    "../../_base_/datasets/synthia-al-demo.py",
    "../../_base_/detectors/mmdet-frcnn-r18-tiny.py",
    "../../_base_/schedules/cpu-al.py",
    "../../_base_/al/demo.py",
    "../../_base_/acquisitions/entropy-mean.py",
]
detector = dict(height=240)  # the frames' own height (320x240)
