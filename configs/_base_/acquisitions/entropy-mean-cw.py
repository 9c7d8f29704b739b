# Entropy, mean, each detection weighted by the inverse frequency of its class in the labeled set (blog 002)
acquisition = dict(name="entropy", aggregation="mean", class_weighting=True)
