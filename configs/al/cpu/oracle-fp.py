# CPU AL protocol (_protocol.py) with acquisition oracle-fp
_base_ = ["_protocol.py", "../../_base_/acquisitions/oracle-fp.py"]
