# README demo: random-r on the demo dataset, EfficientNet-Lite0 FPN (offline ImageNet weights), CPU
_base_ = [
    "../../_base_/datasets/synthia-al-demo.py",
    "../../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
    "../../_base_/schedules/cpu-al.py",
    "../../_base_/al/demo.py",
    "../../_base_/acquisitions/random-r.py",
]
detector = dict(height=240)  # the frames' own height (320x240)
