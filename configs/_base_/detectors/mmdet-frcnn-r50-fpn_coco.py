# Faster R-CNN R50-FPN through the MMDetection backend (thesis 2.5.1's detector, as the mmdet model zoo
# builds it). Needs the OpenMMLab environment: `bash tools/setup_mmdet_env.sh`, then run vidal with
# `.venv-mmdet/bin/python`. COCO weights: --cfg-options detector.weights=/path/to/faster_rcnn_r50_fpn_1x_coco.pth
detector = dict(backend="mmdet", config="mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", weights=None)
