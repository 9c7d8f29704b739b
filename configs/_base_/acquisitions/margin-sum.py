# Margin sampling (1 - (p1 - p2)), summed over the detections of a frame (thesis 2.5.2 after Brust et al.)
acquisition = dict(name="margin", aggregation="sum", class_weighting=False)
