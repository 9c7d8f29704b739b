# PPAL's two stages (Yang et al., CVPR 2024, "Plug and Play Active Learning for Object Detection"):
# class-weighted entropy (mean over detections) shortlists 4 x budget frames, then k-means++ seeding on
# the frame embeddings picks the batch among them (issue 17)
acquisition = dict(name="entropy", aggregation="mean", class_weighting=True,
                   selector=dict(name="hybrid", m=4, diversity="kmeanspp"))
