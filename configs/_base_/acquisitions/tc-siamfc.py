# Temporal coherence (thesis 2.3.2) with SiamFC box propagation (re-tracks every cycle); score = estimated #FP
acquisition = dict(name="temporal_coherence", target="fp")
tracker = dict(name="siamfc")
