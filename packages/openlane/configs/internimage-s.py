# ROAD_BEVFormer with InternImage-S on OpenLane-V2 subset_A (upstream
# `OLV2/plugin/mmdet3d/configs/internimage-s.py`, REFERENCE.md Part 1 §5.2; published val, metric
# v1.0: OLS 0.325, DET_l 0.194, DET_t 0.537, TOP_ll 0.02, TOP_lt 0.17, F-Score 0.224; 8 GPUs × 1).
# Real-data layout (packages/openlane/README.md): data/OpenLane-V2/{train,val,test}/... plus the
# collection pickles written by `interndrive openlane convert`.
task = 'openlane'
default_scope = 'mmdet3d'
custom_imports = dict(
    imports=[
        'interndrive.openlane.registration'
    ],  # dataset, transforms, metric, model, backbone, BEV
    allow_failed_imports=False,
)

point_cloud_range = [-51.2, -25.6, -2.3, 51.2, 25.6, 1.7]
num_cams = 7
n_control = 5  # Bézier control points (end points fixed) → 15 numbers per lane
embed_dims = 256
ffn_dims = 512
num_levels = 4
bev_h = 100
bev_w = 200
num_lane_queries = 100
num_te_queries = 100
num_te_classes = 13

data_root = 'data/OpenLane-V2/'
metric_version = '1.0'  # the seed numbers; '1.1' is the maintainers' current recommendation


def _decoder(num_levels, num_layers=6):
    return dict(
        num_layers=num_layers,
        return_intermediate=True,
        post_norm_cfg=None,  # post-norm layers: no extra norm after the stack
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1, dropout_layer=dict(type='Dropout', drop_prob=0.1), batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1),
        ),
    )


model = dict(
    type='RoadBEVFormer',
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
        with_cp=False,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://huggingface.co/OpenGVLab/InternImage/resolve/main/'
            'internimage_s_1k_224.pth',
        ),
    ),
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=[80, 160, 320, 640],
        out_channels=embed_dims,
        start_level=0,
        add_extra_convs='on_output',
        num_outs=num_levels,
        relu_before_extra_convs=True,
    ),
    bev_constructor=dict(
        type='BEVFormerConstructer',
        bev_h=bev_h,
        bev_w=bev_w,
        embed_dims=embed_dims,
        num_feature_levels=num_levels,
        num_cams=num_cams,
        pc_range=point_cloud_range,
        use_prev_bev=False,  # no temporal history upstream (train and test pass prev_bev=None)
        encoder=dict(
            type='BEVFormerEncoder',
            num_layers=3,
            num_points_in_pillar=4,
            image_size_key='img_shape',  # upstream normalises by the unpadded size
            transformerlayers=dict(
                type='BEVFormerLayer',
                attn_cfgs=[
                    dict(type='TemporalSelfAttention', embed_dims=embed_dims, num_levels=1),
                    dict(
                        type='SpatialCrossAttention',
                        embed_dims=embed_dims,
                        num_cams=num_cams,
                        deformable_attention=dict(
                            type='MSDeformableAttention3D',
                            embed_dims=embed_dims,
                            num_points=8,
                            num_levels=num_levels,
                        ),
                    ),
                ],
                ffn_cfgs=dict(
                    type='FFN', embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1
                ),
                operation_order=('self_attn', 'norm', 'cross_attn', 'norm', 'ffn', 'norm'),
            ),
        ),
    ),
    lane_head=dict(
        type='LaneDETRHead',
        bev_h=bev_h,
        bev_w=bev_w,
        pc_range=point_cloud_range,
        num_query=num_lane_queries,
        embed_dims=embed_dims,
        num_control=n_control,
        decoder=_decoder(num_levels=1),
        with_shared_param=False,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.5),
        loss_reg=dict(type='L1Loss', loss_weight=0.0075),
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=1.5),
                dict(type='LaneL1Cost', weight=0.0075),
            ],
        ),
    ),
    te_head=dict(
        type='TEDeformableDETRHead',
        num_classes=num_te_classes,
        num_query=num_te_queries,
        embed_dims=embed_dims,
        num_feature_levels=num_levels,
        encoder=dict(
            num_layers=6,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, batch_first=True),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.1),
            ),
        ),
        decoder=_decoder(num_levels=num_levels),
        with_box_refine=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=2.5),
        loss_iou=dict(type='GIoULoss', loss_weight=1.0),
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=1.0),
                dict(type='BBoxL1Cost', weight=2.5, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=1.0),
            ],
        ),
    ),
    lclc_head=dict(
        type='RelationshipHead',
        in_channels_o1=embed_dims,
        in_channels_o2=embed_dims,
        shared_param=False,
        loss_rel=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=5.0),
    ),
    lcte_head=dict(
        type='RelationshipHead',
        in_channels_o1=embed_dims,
        in_channels_o2=embed_dims,
        shared_param=False,
        loss_rel=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=5.0),
    ),
)

# Upstream's front-view resize stretches the portrait image by accident (REFERENCE §7.27); ours is
# uniform. Set upstream_swap=True only to run weights trained with the stretch.
upstream_swap = False
train_pipeline = [
    dict(type='OLV2LoadMultiViewImages'),
    dict(type='OLV2PhotoMetricDistortion'),  # on 0–255 values, before normalisation
    dict(type='OLV2ResizeFrontView', upstream_swap=upstream_swap),
    dict(type='OLV2NormalizeMultiViewImage'),
    dict(type='OLV2PadMultiViewImage', size_divisor=32),
    dict(type='OLV2ParameterizeLane', n_control=n_control),
    dict(type='PackOpenLaneV2Inputs'),
]
test_pipeline = [
    dict(type='OLV2LoadMultiViewImages'),
    dict(type='OLV2ResizeFrontView', upstream_swap=upstream_swap),
    dict(type='OLV2NormalizeMultiViewImage'),
    dict(type='OLV2PadMultiViewImage', size_divisor=32),
    dict(type='PackOpenLaneV2Inputs'),
]

train_dataloader = dict(
    batch_size=1,  # per GPU
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='OpenLaneV2Dataset',
        data_root=data_root,
        ann_file='data_dict_subset_A_train.pkl',
        pipeline=train_pipeline,
        test_mode=False,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='OpenLaneV2Dataset',
        data_root=data_root,
        ann_file='data_dict_subset_A_val.pkl',
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type='OpenLaneV2Metric',
    ann_file=data_root + 'data_dict_subset_A_val.pkl',
    version=metric_version,
)
test_evaluator = val_evaluator

# Schedule (§5.2): AdamW 2e-4, wd 0.01, backbone lr × 0.1, grad clip 35; linear warmup 500 iters
# from 1/3, cosine to 1e-3 × lr; 24 epochs; evaluation and a checkpoint every epoch (keep 1).
# The learning rate is for 8 GPUs × 1 sample; set auto_scale_lr.enable=True to rescale.
max_epochs = 24
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'img_backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=1e-3, by_epoch=True, begin=0, end=max_epochs),
]  # fmt: skip
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),  # the CLI uses gloo on a CPU-only machine
)
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)  # upstream trains with --seed 0
