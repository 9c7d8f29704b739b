# CPU AL protocol (_protocol.py) with acquisition entropy-mean-hybrid
_base_ = ["_protocol.py", "../../_base_/acquisitions/entropy-mean-hybrid.py"]
