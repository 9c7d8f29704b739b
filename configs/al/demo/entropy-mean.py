# README demo protocol (_protocol.py) with acquisition entropy-mean
_base_ = ["_protocol.py", "../../_base_/acquisitions/entropy-mean.py"]
