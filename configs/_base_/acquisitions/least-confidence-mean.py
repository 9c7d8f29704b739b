# Least confidence (1 - max p), mean over the detections of a frame (thesis 2.5.2)
acquisition = dict(name="least_confidence", aggregation="mean", class_weighting=False)
