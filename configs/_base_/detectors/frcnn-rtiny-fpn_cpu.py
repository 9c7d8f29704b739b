# Faster R-CNN ResNet-Tiny FPN with the `cpu` profile, from scratch (vidal/detection/resnet_tiny.py:
# dense 3x3 convolutions with BatchNorm, one BasicBlock per stage; learns from random weights far
# faster than EfficientNet-Lite0). 32 FPN channels: the FPN output and RPN 3x3 convolutions on the
# stride-4 level dominate this small model's cost (training 15.0 vs 9.0-10.2 images/s with 64).
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="resnet_tiny_fpn", fpn_channels=32)
