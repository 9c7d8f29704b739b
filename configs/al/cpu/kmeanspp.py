# CPU AL protocol (_protocol.py) with acquisition kmeanspp
_base_ = ["_protocol.py", "../../_base_/acquisitions/kmeanspp.py"]
