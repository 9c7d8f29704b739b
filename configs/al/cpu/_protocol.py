# The CPU AL protocol shared by every method file of this folder (tools/run_grid.py configs/al/cpu).
_base_ = [
    "../../_base_/datasets/synthia-al-cpu.py",
    "../../_base_/detectors/frcnn-effl0-fpn-imagenet_cpu.py",
    "../../_base_/schedules/cpu-al-paired.py",
]
detector = dict(height=240)  # the frames' own height
al = dict(initial=48, budget=12, cycles=3, k=1, per_video=True, train_from="previous", reference=False,
          initial_schedule=dict(epochs=16, milestones=(13,)))
