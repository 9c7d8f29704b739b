# Class-balanced entropy (thesis ch. 4, adapted to detection): entropy-mean scores, the batch chosen by a
# mixed-integer programme that trades the summed (normalised) scores against the L1 distance of the
# expected new boxes per class to a uniform target (lam = worth of one box of imbalance); issue 17
acquisition = dict(name="entropy", aggregation="mean", selector=dict(name="class_balanced", lam=1.0))
