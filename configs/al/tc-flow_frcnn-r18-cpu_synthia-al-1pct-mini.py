# CPU mini protocol on the 1 % SYNTHIA-AL dataset: tc-flow, Faster R-CNN R18-FPN from scratch
_base_ = [
    "../_base_/datasets/synthia-al-1pct.py",
    "../_base_/detectors/frcnn-r18-fpn_cpu.py",
    "../_base_/schedules/cpu-mini.py",
    "../_base_/al/mini.py",
    "../_base_/acquisitions/tc-flow.py",
]
