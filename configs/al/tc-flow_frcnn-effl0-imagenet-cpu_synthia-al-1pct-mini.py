# CPU mini protocol on the 1 % SYNTHIA-AL dataset: tc-flow, Faster R-CNN EfficientNet-Lite0 FPN (offline ImageNet weights)
_base_ = [
    "../_base_/datasets/synthia-al-1pct.py",
    "../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
    "../_base_/schedules/cpu-al.py",
    "../_base_/al/mini.py",
    "../_base_/acquisitions/tc-flow.py",
]
