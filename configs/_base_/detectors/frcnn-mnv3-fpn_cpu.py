# Faster R-CNN MobileNetV3-Large FPN from scratch with the `cpu` profile
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="mobilenet_v3_fpn")
