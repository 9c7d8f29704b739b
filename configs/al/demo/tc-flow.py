# README demo protocol (_protocol.py) with acquisition tc-flow
_base_ = ["_protocol.py", "../../_base_/acquisitions/tc-flow.py"]
