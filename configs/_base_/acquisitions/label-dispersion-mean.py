# Label dispersion (thesis ch. 3, adapted to detection): each final detection's labels at the end of the
# 3 epochs before the last (IoU >= 0.5 matching, "no detection" a class); 1 - share of the modal label,
# mean over the frame's detections (issue 17)
acquisition = dict(name="label_dispersion", checkpoints=3, iou=0.5, aggregation="mean")
