# CPU AL protocol (_protocol.py) with acquisition oracle-fn
_base_ = ["_protocol.py", "../../_base_/acquisitions/oracle-fn.py"]
