# Thesis 2.5 protocol on SYNTHIA-AL (GPU scale): random-r, MMDetection Faster R-CNN R50-FPN (mmdet model zoo
# config; COCO weights: --cfg-options detector.weights=/path/to/faster_rcnn_r50_fpn_1x_coco.pth).
# The same experiment as ../random-r_frcnn-r50-coco_synthia-al.py with the detector swapped. Run it from the
# OpenMMLab environment: .venv-mmdet/bin/python tools/run_al.py THIS_FILE --work-dir DIR --seed N
_base_ = [
    "../../_base_/datasets/synthia-al.py",
    "../../_base_/detectors/mmdet-frcnn-r50-fpn_coco.py",
    "../../_base_/schedules/thesis-synthia-al.py",
    "../../_base_/al/thesis-synthia-al.py",
    "../../_base_/acquisitions/random-r.py",
]
# Random+R runs also train the all-data reference (thesis Table 2.2, first row)
al = dict(reference=True)
