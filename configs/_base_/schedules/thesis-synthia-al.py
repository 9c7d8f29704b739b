# Thesis 2.5.1, SYNTHIA-AL: SGD momentum 0.9, lr 0.02, 10 epochs, lr / 5 after epochs 5 and 7, batch 12
schedule = dict(epochs=10, lr=0.02, momentum=0.9, milestones=(5, 7), gamma=0.2, batch_size=12)
evaluation = dict(score_threshold=0.5, nms_iou=0.5)
