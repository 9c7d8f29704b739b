# Short CPU schedule for training from scratch on ~1,000 frames in under 10 minutes on 2 cores
# (ResNet-Tiny `cpu` profile with 32 FPN channels, ~1.1 min per epoch): thesis-style SGD with lr 0.02
# (BatchNorm throughout the backbone tolerates it) and a 100-iteration warm-up, 8 epochs, lr x0.2
# for the last two. A from-scratch model on a few dozen object tracks memorises them (train mAP@0.5
# 0.88 vs test 0.30 without augmentation), so (README, "Training on CPU"):
# - crop=0.625: random 0.625-side crops of each frame kept at the frame's scale (with the
#   detector's 480-px height: 300x400-px crops at full resolution);
# - photometric=0.5: half the frames get a random hue rotation (p 0.5), brightness down to
#   night-like darkness, contrast, saturation and colour cast (vidal/detection/augment.py); the
#   hue rotation took test cyclist AP from ~0.03 to ~0.3 (the model had learned shirt colours);
# - repeat_threshold=0.3: class-balanced repeats of the rare wheelchair / cyclist frames;
# - ema_decay=0.998: the model evaluated and kept is the weights' moving average.
schedule = dict(epochs=8, lr=0.02, momentum=0.9, milestones=(6,), gamma=0.2, batch_size=4, warmup_iters=100,
                crop=0.625, photometric=0.5, repeat_threshold=0.3, ema_decay=0.998)
