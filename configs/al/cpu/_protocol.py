# The CPU AL protocol shared by every method file of this folder (tools/run_grid.py configs/al/cpu).
# Second version (docs/results.md "The second protocol"); the first (48 + 3 x 12 frames) was too noisy
# to pass the positive control: its paired differences had a std of 0.013-0.075 mAP.
# - budget: 48 initial frames (3 per video), then 2 selections of 14 (76 = 14 % of the pool). Two
#   larger selections instead of three of 12: each selection is a larger share of what the model
#   learns from (28 of 76 frames chosen by the method), each fine-tuning adds its own noise, and
#   a grid of 8 methods x 3 seeds fits one session on 2 cores. 14 < 16 videos, so the scores (not
#   the round robin) decide which videos give a frame.
# - ranking metric (tools/run_grid.py / grid_report.py --metric, default): VOC AP@0.5 over every
#   detection, with the thesis's AP@0.5 of detections scored >= 0.5 reported beside it. Measured on
#   the first protocol: the car AP of one seed's models moved 0.26-0.54 between methods at one cycle
#   with 60 labeled frames each; a young model's car scores sit near 0.5, so small calibration
#   shifts moved whole sets of true positives across the threshold.
# - cycle 0 is trained once per seed and its pool predictions are shared (tools/run_grid.py).
_base_ = [
    "../../_base_/datasets/synthia-al-cpu.py",
    "../../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
    "../../_base_/schedules/cpu-al-paired.py",
]
detector = dict(height=240)  # the frames' own height
al = dict(initial=48, budget=14, cycles=2, k=1, per_video=True, train_from="previous", reference=False,
          initial_schedule=dict(epochs=16, milestones=(13,)))
