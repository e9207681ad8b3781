# BEVFormer-Occ baseline with ResNet-101-DCN (upstream `bevformer_base_occ.py`; published val
# mIoU 23.67). Caffe-style input normalisation, frozen stem + stage 1, BN frozen, DCNv2 in stages
# 3-4, backbone at 0.1× lr, whole-model init from the FCOS3D checkpoint.
_base_ = ['./bevformer_intern-s_occ.py']

img_norm_cfg = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)

model = dict(
    img_backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=101,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN2d', requires_grad=False),
        norm_eval=True,
        style='caffe',
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, False, True, True),
    ),
    img_neck=dict(in_channels=[512, 1024, 2048]),
)

train_pipeline = [
    dict(type='OccLoadMultiViewImages', to_float32=True),
    dict(type='LoadOccupancyGT'),
    dict(type='OccPhotoMetricDistortionMultiView'),
    dict(type='OccNormalizeMultiViewImage', **img_norm_cfg),
    dict(type='OccPadMultiViewImage', size_divisor=32),
    dict(type='PackOccInputs'),
]
test_pipeline = [
    dict(type='OccLoadMultiViewImages', to_float32=True),
    dict(type='LoadOccupancyGT'),
    dict(type='OccNormalizeMultiViewImage', **img_norm_cfg),
    dict(type='OccPadMultiViewImage', size_divisor=32),
    dict(type='PackOccInputs'),
]
train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=35, norm_type=2),
)
load_from = 'ckpts/r101_dcn_fcos3d_pretrain.pth'
