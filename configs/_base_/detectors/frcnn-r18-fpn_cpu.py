# Faster R-CNN ResNet-18 FPN from scratch with the `cpu` profile (fewer sampled anchors / RoIs)
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="resnet18_fpn")
