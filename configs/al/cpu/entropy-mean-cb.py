# CPU AL protocol (_protocol.py) with acquisition entropy-mean-cb
_base_ = ["_protocol.py", "../../_base_/acquisitions/entropy-mean-cb.py"]
