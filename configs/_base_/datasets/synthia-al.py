# The full SYNTHIA-AL preset (thesis Table 2.1): ~151k frames, 5.3 GB; ~11 min on 2 cores
dataset = dict(
    train="data/synthia-al/train.h5",
    test="data/synthia-al/test.h5",
    generate="python tools/generate.py --preset synthia-al --scale 1.0 --out data/synthia-al --workers 8",
)
