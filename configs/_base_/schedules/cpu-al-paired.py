# Per-cycle schedule of the CPU AL protocol (configs/al/cpu): every cycle fine-tunes the previous
# cycle's model for 6 epochs over the labeled frames, with the augmentation the detector work
# measured (configs/_base_/schedules/cpu-scratch.py, README "Training on CPU"): scale-kept crops of
# 0.625 of the frame, photometric + hue 0.5, class-balanced repeats 0.3, weight averaging (decay
# 0.99: a horizon of ~100 iterations, the length of one cycle's training).
schedule = dict(epochs=6, lr=0.01, momentum=0.9, milestones=(5,), gamma=0.2, batch_size=4, warmup_iters=50,
                crop=0.625, photometric=0.5, repeat_threshold=0.3, ema_decay=0.99)
evaluation = dict(score_threshold=0.5, nms_iou=0.5, matching="voc", max_frames=320)
