# Entropy of the softmax rows, mean over the detections of a frame (thesis 2.5.2)
acquisition = dict(name="entropy", aggregation="mean", class_weighting=False)
