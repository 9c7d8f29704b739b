# The CPU AL protocol's data (configs/al/cpu): the pool is the train split of 1 % of the SYNTHIA-AL
# preset at 320x240 (21 videos, 1,065 frames at 25 fps, 1,657 boxes); the test split is that of the
# 2 % preset at 320x240 (14 videos, 961 frames), which holds twice the object tracks of the 1 %
# test split (15 pedestrians, 4 cyclists, 19 cars), so that one track of a rare class weighs less
# in the mean. The protocol evaluates on 480 of its frames spread evenly (evaluation.max_frames).
dataset = dict(
    train="data/synthia-al-demo/train.h5",
    test="data/synthia-al-2pct-240/test.h5",
    generate="python tools/generate.py --preset synthia-al --scale 0.01 --resolution 320x240 "
             "--out data/synthia-al-1pct-240 && python tools/generate.py --preset synthia-al --scale 0.02 "
             "--resolution 320x240 --out data/synthia-al-2pct-240",
)
