# CPU AL protocol (_protocol.py) with acquisition label-dispersion-mean
_base_ = ["_protocol.py", "../../_base_/acquisitions/label-dispersion-mean.py"]
