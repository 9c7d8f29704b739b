# CPU AL protocol (_protocol.py) with acquisition kcenter
_base_ = ["_protocol.py", "../../_base_/acquisitions/kcenter.py"]
