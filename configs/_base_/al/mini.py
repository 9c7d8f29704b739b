# CPU-sized protocol of the thesis (2 % initial, 2 % per cycle, k = 1, per-video) with 3 selections
# (2 % -> 8 %) so that a run of the 1 % dataset ends in minutes on a laptop
al = dict(initial=0.02, budget=0.02, cycles=3, k=1, per_video=True, train_from="previous", reference=False)
