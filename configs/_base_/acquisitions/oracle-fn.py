# Oracle (FN): real false negatives per frame from the ground truth (thesis 2.3.1), evaluation thresholds
acquisition = dict(name="oracle_fn")
