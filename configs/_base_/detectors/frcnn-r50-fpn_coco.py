# The thesis's detector (2.5.1): Faster R-CNN ResNet-50 FPN, COCO-pretrained, fine-tuned each cycle.
# Point `weights` at torchvision's fasterrcnn_resnet50_fpn_coco-258fb6c6.pth (never downloaded):
#   --cfg-options detector.weights=/path/to/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth
detector = dict(backend="torchvision_frcnn", profile="default", backbone="resnet50_fpn", weights=None,
                height=300)
