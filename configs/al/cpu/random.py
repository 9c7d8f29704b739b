# CPU AL protocol (_protocol.py) with acquisition random
_base_ = ["_protocol.py", "../../_base_/acquisitions/random.py"]
