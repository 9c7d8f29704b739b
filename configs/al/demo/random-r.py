# README demo protocol (_protocol.py) with acquisition random-r
_base_ = ["_protocol.py", "../../_base_/acquisitions/random-r.py"]
