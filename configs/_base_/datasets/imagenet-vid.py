# ImageNet-VID restricted to car, bicycle, motorcycle (thesis 2.5.3); import the ILSVRC2015 tree first
dataset = dict(
    train="data/imagenet-vid/train.h5",
    test="data/imagenet-vid/val.h5",
    generate="python tools/import_imagenet_vid.py ILSVRC2015 --out data/imagenet-vid",
)
