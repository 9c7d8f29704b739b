# An MMDetection config (mmengine format, read by vidal's mmdet backend): Faster R-CNN R50-FPN of the
# mmdet model zoo shrunk to a weights-free ResNet-18 with 8 base channels, a 32-channel FPN and a
# 64-d box head, for tests and CPU smoke runs on tiny images (vidal detector height ~64 px).
# vidal sets roi_head.bbox_head.num_classes and the test_cfg.rcnn thresholds itself.
_base_ = "mmdet::_base_/models/faster-rcnn_r50_fpn.py"

model = dict(
    backbone=dict(depth=18, base_channels=8, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32,
                  anchor_generator=dict(scales=[4], ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=64),
        rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=64)),
)
