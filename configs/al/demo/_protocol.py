# The README demo (python tools/demo.py): the CPU AL protocol of configs/al/cpu shortened to fit one
# seed of three methods in under 15 minutes on 2 cores: the same pool, test split, detector,
# schedule (every cycle trained from the start weights, 16 epochs), initial set (48 frames) and
# selection size (20 frames), but one selection instead of two (48 -> 68 labeled frames) and 160
# test frames spread over the split instead of 480 (a noisier estimate). One seed is a
# demonstration; the comparison is configs/al/cpu with --seeds 0,1,2 (docs/results.md).
_base_ = ["../cpu/_protocol.py"]
evaluation = dict(max_frames=160)
al = dict(cycles=1)
