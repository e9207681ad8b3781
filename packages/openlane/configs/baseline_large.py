# ROAD_BEVFormer with ResNet-50 on OpenLane-V2 subset_A (upstream `baseline_large.py`; published val,
# metric v1.0: OLS 0.292, DET_l 0.183, DET_t 0.457, TOP_ll 0.022, TOP_lt 0.143, F-Score 0.215).
# Identical to internimage-s.py except the backbone and the FPN inputs (REFERENCE §5.2).
_base_ = ['./internimage-s.py']

model = dict(
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # Upstream writes 'torchvision://resnet50'; mmengine resolves that scheme by importing
        # torchvision, which cannot load beside the CPU torch wheel here. This is the URL it
        # resolves to (ImageNet-1k V1 weights, mmengine/hub/torchvision_0.12.json).
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/resnet50-0676ba61.pth',
        ),
    ),
    img_neck=dict(in_channels=[512, 1024, 2048]),
)
