# Demo protocol: 5 % initial, 5 % per cycle, 2 selections (5 -> 15 %), temporal exclusion k = 1 and
# per-video sampling as the thesis's SYNTHIA-AL protocol (sizes scaled up: 2 % of ~500 frames is too
# few to train on)
al = dict(initial=0.05, budget=0.05, cycles=2, k=1, per_video=True, train_from="previous", reference=False)
