# CPU AL protocol (_protocol.py) with acquisition margin-sum
_base_ = ["_protocol.py", "../../_base_/acquisitions/margin-sum.py"]
