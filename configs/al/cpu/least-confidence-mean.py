# CPU AL protocol (_protocol.py) with acquisition least-confidence-mean
_base_ = ["_protocol.py", "../../_base_/acquisitions/least-confidence-mean.py"]
