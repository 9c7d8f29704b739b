# Thesis 2.5 on SYNTHIA-AL: 2 % random initial set, 2 % per cycle, 5 selections (12 % at the end),
# temporal exclusion k = 1 and per-video sampling for every method, fine-tune the previous model
al = dict(initial=0.02, budget=0.02, cycles=5, k=1, per_video=True, train_from="previous", reference=False)
