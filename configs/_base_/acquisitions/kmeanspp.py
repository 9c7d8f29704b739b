# k-means++ seeding (Arthur & Vassilvitskii 2007) on the detector's frame embeddings, continued from the
# labeled frames as centres: frames drawn with probability ~ squared distance to the nearest centre (issue 17)
acquisition = dict(name="random_r", selector=dict(name="kmeanspp"))
