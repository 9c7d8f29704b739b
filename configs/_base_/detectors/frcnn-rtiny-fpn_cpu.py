# Faster R-CNN ResNet-Tiny FPN with the `cpu` profile, from scratch (vidal/detection/resnet_tiny.py:
# dense 3x3 convolutions with BatchNorm, one BasicBlock per stage; learns from random weights far
# faster than EfficientNet-Lite0, and trains ~2.3x faster per image on CPU)
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="resnet_tiny_fpn")
