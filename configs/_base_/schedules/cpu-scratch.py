# Short CPU schedule for training from scratch on ~1,000 frames in under 10 minutes on 2 cores
# (ResNet-Tiny `cpu` profile with 32 FPN channels, ~1.2-1.4 min per epoch): thesis-style SGD with lr 0.02
# (BatchNorm throughout the backbone tolerates it) and a 100-iteration warm-up, 7 epochs, lr x0.2
# for the last two.
schedule = dict(epochs=7, lr=0.02, momentum=0.9, milestones=(5,), gamma=0.2, batch_size=4, warmup_iters=100)
