# Faster R-CNN ResNet-Tiny FPN with the `cpu` profile, from scratch (vidal/detection/resnet_tiny.py:
# dense 3x3 convolutions with BatchNorm, one BasicBlock per stage; learns from random weights far
# faster than EfficientNet-Lite0). 32 FPN channels: the FPN output and RPN 3x3 convolutions on the
# stride-4 level dominate this small model's cost (training 15.0 vs 9.0-10.2 images/s with 64).
# Native 480-px height (synth's median box is 21 px high there, 13 px at 300): the schedule trains
# on crops kept at this scale (schedule.crop), so a training step costs what a 300-px frame does.
# input_norm="image": each image's own mean / std, so night and rain frames reach the network
# like day frames (README, "Training on CPU").
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="resnet_tiny_fpn", fpn_channels=32,
                height=480, input_norm="image")
