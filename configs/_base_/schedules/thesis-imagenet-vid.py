# Thesis 2.5.1, ImageNet-VID: lr 0.001, 6 epochs, lr / 5 after epochs 3 and 5, batch 12
schedule = dict(epochs=6, lr=0.001, momentum=0.9, milestones=(3, 5), gamma=0.2, batch_size=12)
evaluation = dict(score_threshold=0.5, nms_iou=0.5)
