# Thesis 2.5 protocol on ImageNet-VID (car, bicycle, motorcycle; GPU scale): random, Faster R-CNN R50-FPN from COCO weights
_base_ = [
    "../_base_/datasets/imagenet-vid.py",
    "../_base_/detectors/frcnn-r50-fpn_coco.py",
    "../_base_/schedules/thesis-imagenet-vid.py",
    "../_base_/al/thesis-imagenet-vid.py",
    "../_base_/acquisitions/random.py",
]
