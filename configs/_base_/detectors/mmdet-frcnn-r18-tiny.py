# A weights-free tiny Faster R-CNN through the MMDetection backend (configs/mmdet/faster-rcnn_r18-tiny.py):
# for tests and smoke runs of the OpenMMLab environment on CPU (`bash tools/setup_mmdet_env.sh`).
detector = dict(backend="mmdet", config="configs/mmdet/faster-rcnn_r18-tiny.py")
