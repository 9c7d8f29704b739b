# 1 % of the SYNTHIA-AL preset (thesis Table 2.1 proportions): ~1,100 train / ~550 test frames, 640x480
dataset = dict(
    train="data/synthia-al-1pct/train.h5",
    test="data/synthia-al-1pct/test.h5",
    generate="python tools/generate.py --preset synthia-al --scale 0.01 --out data/synthia-al-1pct",
)
