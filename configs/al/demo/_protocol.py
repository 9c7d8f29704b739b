# The README demo (python tools/demo.py): the CPU AL protocol of configs/al/cpu, shortened to fit
# one seed of three methods in about 10 minutes on 2 cores: the same data, detector, schedule and
# budgets, evaluated on 160 test frames spread over the split instead of 320 (a noisier estimate).
_base_ = ["../cpu/_protocol.py"]
evaluation = dict(max_frames=160)
