# Per-cycle CPU schedule of AL runs (demo, mini): each cycle fine-tunes the previous model for 8 epochs
# over the labeled frames (~50 / 100 / 160 iterations of batch 4 for 5 / 10 / 15 % of ~500 frames)
schedule = dict(epochs=8, lr=0.01, momentum=0.9, milestones=(6,), gamma=0.2, batch_size=4, warmup_iters=20)
evaluation = dict(score_threshold=0.5, nms_iou=0.5)
