# Thesis 2.5 protocol on SYNTHIA-AL (GPU scale): kcenter, Faster R-CNN R50-FPN from COCO weights
_base_ = [
    "../_base_/datasets/synthia-al.py",
    "../_base_/detectors/frcnn-r50-fpn_coco.py",
    "../_base_/schedules/thesis-synthia-al.py",
    "../_base_/al/thesis-synthia-al.py",
    "../_base_/acquisitions/kcenter.py",
]
