# BEVFormer-Occ with InternImage-S on Occ3D-nuScenes (upstream
# `OCC/projects/configs/bevformer/bevformer_intern-s_occ.py`; published val mIoU 25.11, 8 GPUs × 1).
# Real data layout: data/occ3d-nus (nuScenes + gts/ + annotations.json + info pickles), data/can_bus.
_base_ = [
    './_base_/datasets/occ3d_nuscenes.py',
    './_base_/models/bevformer_occ.py',
    './_base_/schedules/cosine_24e.py',
    './_base_/default_runtime.py',
]

model = dict(
    img_backbone=dict(
        type='InternImage',
        core_op='DCNv3',
        channels=80,
        depths=[4, 4, 21, 4],
        groups=[5, 10, 20, 40],
        mlp_ratio=4.0,
        drop_path_rate=0.3,
        norm_layer='LN',
        layer_scale=1.0,
        offset_scale=1.0,
        post_norm=True,
        with_cp=True,
        out_indices=(1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
            'mask_rcnn_internimage_s_fpn_3x_coco.pth',
        ),
    ),
    img_neck=dict(in_channels=[160, 320, 640]),
)

# InternImage-S: AdamW wd 0.05 with the layer-decay constructor (decay 1.0 = full lr everywhere).
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
    constructor='CustomLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=33, layer_decay_rate=1.0, depths=[4, 4, 21, 4]),
)
