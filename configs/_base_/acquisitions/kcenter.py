# Core-set (Sener & Savarese, ICLR 2018): greedy k-centre on the detector's frame embeddings (pooled
# FPN features), from the labeled frames as centres; random scores only break ties (issue 17)
acquisition = dict(name="random_r", selector=dict(name="kcenter"))
