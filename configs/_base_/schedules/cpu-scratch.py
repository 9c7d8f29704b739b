# Short CPU schedule for training from scratch on ~1,000 frames in under 10 minutes on 2 cores
# (ResNet-Tiny `cpu` profile, ~1.6 min per epoch with repeats): thesis-style SGD with lr 0.02 (BatchNorm
# everywhere in the backbone tolerates it) and a 100-iteration warm-up, lr x0.2 for the last epoch,
# class-balanced repeat-factor sampling (repeat_threshold 0.3) for the rare classes.
schedule = dict(epochs=6, lr=0.02, momentum=0.9, milestones=(5,), gamma=0.2, batch_size=4, warmup_iters=100,
                repeat_threshold=0.3)
