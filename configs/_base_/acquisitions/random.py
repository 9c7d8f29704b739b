# Uniform random sampling (thesis 2.5.2 "Random"): no temporal exclusion, no per-video sampling
acquisition = dict(name="random")
