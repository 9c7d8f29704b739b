# Faster R-CNN EfficientNet-Lite0 FPN with the `cpu` profile, from scratch
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="efficientnet_lite0_fpn")
