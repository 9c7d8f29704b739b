# Temporal coherence (thesis 2.3.2) with optical-flow box propagation; score = estimated #FP.
# The flow is computed once per dataset (python tools/compute_flow.py TRAIN.h5); flow=None reads
# the cache next to the train split (<train>.flow.h5)
acquisition = dict(name="temporal_coherence", target="fp")
tracker = dict(name="flow", flow=None)
