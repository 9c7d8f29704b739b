# Random+R (thesis 2.5.2): random scores under the protocol's temporal exclusion k and per-video sampling
acquisition = dict(name="random_r")
