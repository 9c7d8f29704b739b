# Short CPU schedule for training on ~1,000 frames in under 10 minutes on 2 cores (EfficientNet-Lite0
# `cpu` profile: ~6 images/s, ~3 min per epoch): 3 epochs, lr x0.2 for the last one. lr 0.01 for
# batch 4 with a 100-iteration warm-up: lr 0.02 with a 50-iteration warm-up killed the RPN's ReLUs
# in the first epoch (constant outputs, mAP 0).
schedule = dict(epochs=3, lr=0.01, momentum=0.9, milestones=(2,), gamma=0.2, batch_size=4, warmup_iters=100)
