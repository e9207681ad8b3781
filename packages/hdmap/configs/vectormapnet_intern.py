# VectorMapNet with InternImage-S, Argoverse 2 online HD map challenge (CVPR 2023) — upstream
# `HDM/src/configs/vectormapnet_intern.py` in mmengine form. Published: 49.35 mAP on the challenge val set
# (not reproduced here: no data or GPU; see the package README).
#
# Data layout (README "Data layout"): data/av2/{train,val,test}_annotations.json, images under
# data/av2/{train,val,test}/<segment>/image/<camera>/<timestamp>.jpg (image_path relative to the split
# folder). Override with --cfg-options {train,val,test}_dataloader.dataset.data_root=... and the
# evaluator's ann_file.
task = 'hdmap'
default_scope = 'mmdet3d'
custom_imports = dict(
    imports=[
        'interndrive.common.openmmlab',  # InternImage backbone
        'interndrive.hdmap.data.dataset',
        'interndrive.hdmap.data.transforms',
        'interndrive.hdmap.data.pack',
        'interndrive.hdmap.models',
        'interndrive.hdmap.openmmlab_metric',
    ],
    allow_failed_imports=False,
)

data_dir = 'data/av2/'
roi_size = (60, 30)
canvas_size = (200, 100)
num_classes = 3
img_size = (256, int(16 / 9 * 128 * 2))  # (256, 455) (H, W), padded to 256 x 480
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
meta = dict(
    use_lidar=False, use_camera=True, use_external=False, output_format='vector',
    method='VectorMapNet (InternImage-S)', authors=[], **{'e-mail': '', 'institution / company': '',
                                                          'country / region': ''},
)  # fmt: skip

bev_channels = 128
model = dict(
    type='VectorMapNet',
    backbone_cfg=dict(
        type='IPMEncoder',
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
            out_channels=bev_channels,
            start_level=0,
            add_extra_convs=True,
            num_outs=4,
            norm_cfg=dict(type='BN2d'),
            relu_before_extra_convs=True,
        ),
        upsample=dict(zoom_size=(1, 2, 4, 8), in_channels=bev_channels, out_channels=bev_channels),
        xbound=[-roi_size[0] / 2, roi_size[0] / 2, 0.3],
        ybound=[-roi_size[1] / 2, roi_size[1] / 2, 0.3],
        heights=[-1.1, 0, 0.5, 1.1],
        out_channels=bev_channels,
        num_cam=7,
    ),
    neck_cfg=dict(type='BEVResNetNeck', in_channels=bev_channels, mid_channels=64, out_channels=bev_channels),
    head_cfg=dict(
        type='DGHead',
        augmentation=True,
        augmentation_kwargs=dict(p=0.3, scale=0.01, bbox_type='xyxy'),
        max_num_vertices=80,
        top_p_gen_model=0.9,
        greedy_decoding=False,  # nucleus sampling as upstream; True for reproducible evaluation
        sync_cls_avg_factor=True,
        det_net_cfg=dict(
            num_query=120,
            max_lines=35,
            bbox_size=2,
            canvas_size=canvas_size,
            num_classes=num_classes,
            in_channels=bev_channels,
            embed_dims=256,
            num_layers=6,
            num_heads=8,
            ffn_dims=512,
            dropout=0.1,
            num_points=4,
            num_reg_fcs=2,
            loss_cls_weight=2.0,
            loss_reg_weight=0.1,
            cost_weights=(2.0, 0.1, 1.0),
        ),
        gen_net_cfg=dict(
            in_channels=bev_channels,
            canvas_size=canvas_size,
            num_classes=num_classes,
            d_model=256,
            nhead=8,
            dim_feedforward=512,
            dropout=0.2,
            num_layers=6,
            re_zero=True,
            max_seq_length=500,
            max_sample_length=64,
        ),
    ),
)

train_pipeline = [
    dict(type='HDMapVectorizeMap', roi_size=roi_size, simplify_tolerance=0.2, normalize=True),
    dict(type='HDMapPolygonizeLocalMapBbox', canvas_size=canvas_size, min_bbox_size=4 / 200),
    dict(type='HDMapLoadMultiViewImages'),
    dict(type='HDMapResizeMultiViewImages', size=img_size),
    dict(type='HDMapNormalizeMultiViewImages', **img_norm_cfg),
    # padding moves no pixel, so camera matrices stay; upstream_pad_rescale=True reproduces upstream's
    # rescaling (REFERENCE §7.22), only to run its released weights
    dict(type='HDMapPadMultiViewImages', size_divisor=32, upstream_pad_rescale=False),
    dict(type='HDMapPackInputs'),
]
test_pipeline = train_pipeline[2:]


def _dataset(split, pipeline, test_mode):
    return dict(
        type='AV2MapDataset',
        data_root=data_dir + split + '/',
        ann_file=f'../{split}_annotations.json',  # relative to data_root (mmengine joins them)
        pipeline=pipeline,
        test_mode=test_mode,
        interval=1,
    )


train_dataloader = dict(
    batch_size=5,
    num_workers=5,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_dataset('train', train_pipeline, False),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=5,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_dataset('val', test_pipeline, True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='HDMapChamferMetric', ann_file=data_dir + 'val_annotations.json', meta=meta)
test_evaluator = val_evaluator
del _dataset

max_epochs = 130
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=3.5, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=400),
    dict(type='MultiStepLR', milestones=[100, 120], gamma=0.1, by_epoch=True, begin=0, end=max_epochs),
]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=3),
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
