# Short CPU schedule for training from scratch on ~1,000 frames (tuned in benchmarks/bench_detector.py)
schedule = dict(epochs=6, lr=0.02, momentum=0.9, milestones=(4, 5), gamma=0.2, batch_size=4, warmup_iters=50)
evaluation = dict(score_threshold=0.5, nms_iou=0.5)
