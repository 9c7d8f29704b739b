# Thesis 2.5 protocol on SYNTHIA-AL (GPU scale): entropy-mean-cb, Faster R-CNN R50-FPN from COCO weights
_base_ = [
    "../_base_/datasets/synthia-al.py",
    "../_base_/detectors/frcnn-r50-fpn_coco.py",
    "../_base_/schedules/thesis-synthia-al.py",
    "../_base_/al/thesis-synthia-al.py",
    "../_base_/acquisitions/entropy-mean-cb.py",
]
# the full pool is too large for one exact programme: it is solved over the 10 x budget best-scored frames
acquisition = dict(name="entropy", aggregation="mean",
                   selector=dict(name="class_balanced", lam=1.0, shortlist=10, time_limit=300.0))
