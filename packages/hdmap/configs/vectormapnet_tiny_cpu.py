# Tiny VectorMapNet for CPU tests and `interndrive demo hdmap`: the same modules and code path as
# vectormapnet_intern, scaled down — InternImage with 16 channels and one block per stage, FPN/BEV of
# 32 channels, 25 x 50 BEV of 1.2 m cells, 2-layer detector (24 queries) and generator (width 64),
# 64 x 112 images padded to 64 x 128, greedy decoding (reproducible). The canvas (200 x 100), the
# vocabulary, the metric and the submission are the real ones. Meant for the synthetic dataset
# (`interndrive hdmap generate`); not a model to train for accuracy.
_base_ = ['./vectormapnet_intern.py']

data_dir = 'work_dirs/hdmap_demo/data/'  # the demo writes here; override per run
img_size = (64, 112)
ch = 32
model = dict(
    backbone_cfg=dict(
        img_backbone=dict(
            _delete_=True,
            type='InternImage',
            core_op='DCNv3',
            channels=16,
            depths=[1, 1, 1, 1],
            groups=[1, 2, 4, 8],
            mlp_ratio=2.0,
            drop_path_rate=0.0,
            norm_layer='LN',
            layer_scale=1.0,
            offset_scale=1.0,
            post_norm=True,
            with_cp=False,
            out_indices=(0, 1, 2, 3),
        ),
        img_neck=dict(in_channels=[16, 32, 64, 128], out_channels=ch),
        upsample=dict(in_channels=ch, out_channels=ch),
        xbound=[-30.0, 30.0, 1.2],
        ybound=[-15.0, 15.0, 1.2],
        out_channels=ch,
    ),
    neck_cfg=dict(in_channels=ch, mid_channels=16, out_channels=ch),
    head_cfg=dict(
        greedy_decoding=True,
        det_net_cfg=dict(
            num_query=24, max_lines=12, in_channels=ch, embed_dims=32, num_layers=2, num_heads=4,
            ffn_dims=64,
        ),
        gen_net_cfg=dict(
            in_channels=ch, d_model=64, nhead=4, dim_feedforward=128, num_layers=2, max_sample_length=40,
        ),
    ),
)  # fmt: skip

train_pipeline = [
    dict(type='HDMapVectorizeMap', roi_size=(60, 30), simplify_tolerance=0.2, normalize=True),
    dict(type='HDMapPolygonizeLocalMapBbox', canvas_size=(200, 100), min_bbox_size=4 / 200),
    dict(type='HDMapLoadMultiViewImages'),
    dict(type='HDMapResizeMultiViewImages', size=img_size),
    dict(type='HDMapNormalizeMultiViewImages'),
    dict(type='HDMapPadMultiViewImages', size_divisor=32),
    dict(type='HDMapPackInputs'),
]
test_pipeline = train_pipeline[2:]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_dir + 'train/', pipeline=train_pipeline),
)
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_dir + 'val/', pipeline=test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_dir + 'val_annotations.json')
test_evaluator = val_evaluator

max_epochs = 4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=2e-3), paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)]
model_wrapper_cfg = dict(find_unused_parameters=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1),
)
log_processor = dict(window_size=1)
randomness = dict(seed=0)
