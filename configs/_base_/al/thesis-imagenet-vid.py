# Thesis 2.5 on ImageNet-VID: 2 % random initial set, 2 % per cycle, 4 selections (10 % at the end),
# temporal exclusion k = 3 and per-video sampling for every method, fine-tune the previous model
al = dict(initial=0.02, budget=0.02, cycles=4, k=3, per_video=True, train_from="previous", reference=False)
