# Temporal coherence (thesis 2.3.2) with optical-flow box propagation; score = estimated #FP
acquisition = dict(name="temporal_coherence", target="fp")
tracker = dict(name="flow")
