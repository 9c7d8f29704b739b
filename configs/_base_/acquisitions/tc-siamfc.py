# Temporal coherence (thesis 2.3.2) with SiamFC box propagation (re-tracks every cycle); score =
# estimated #FP. SiamFC needs weights: --cfg-options tracker.weights=/path/to/siamfc.pth
acquisition = dict(name="temporal_coherence", target="fp")
tracker = dict(name="siamfc", weights=None)
