# Demo-sized SYNTHIA-AL (0.5 % of the preset at 320x240: ~500 train / ~280 test frames), for the
# README's main command on a CPU
dataset = dict(
    train="data/synthia-al-demo/train.h5",
    test="data/synthia-al-demo/test.h5",
    generate="python tools/generate.py --preset synthia-al --scale 0.005 --resolution 320x240 --out data/synthia-al-demo",
)
