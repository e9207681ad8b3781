# Tiny BEVFormer-Occ for CPU tests and `interndrive demo occupancy`: same architecture and code path
# as bevformer_intern-s_occ, scaled down (InternImage with 16 channels and one block per stage, FPN
# of 32 channels, 25×25 BEV of 3.2 m cells, one encoder layer, 4 anchors per pillar, 2-frame
# queues). The decoder upsamples its 25×25×16 logits to the 200×200×16 Occ3D grid, so the metric,
# the submission and the ground truth are the real ones. Meant for the synthetic dataset
# (`interndrive occupancy generate`, 128×72 images); not a model to train for accuracy.
_base_ = ['./bevformer_intern-s_occ.py']

data_root = 'work_dirs/occ_demo/data/'  # `make_demo_data(work_dir)` writes here; override per run
embed_dims = 32
bev_h = 25
bev_w = 25
queue_length = 2

model = dict(
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
        out_indices=(1, 2, 3),
    ),
    img_neck=dict(in_channels=[32, 64, 128], out_channels=embed_dims),
    bev_constructor=dict(
        bev_h=bev_h,
        bev_w=bev_w,
        embed_dims=embed_dims,
        encoder=dict(
            num_layers=1,
            num_points_in_pillar=4,
            transformerlayers=dict(
                attn_cfgs=[
                    dict(type='TemporalSelfAttention', embed_dims=embed_dims, num_levels=1),
                    dict(
                        type='SpatialCrossAttention',
                        embed_dims=embed_dims,
                        num_cams=6,
                        deformable_attention=dict(
                            type='MSDeformableAttention3D',
                            embed_dims=embed_dims,
                            num_points=4,
                            num_levels=4,
                        ),
                    ),
                ],
                ffn_cfgs=dict(embed_dims=embed_dims, feedforward_channels=64, ffn_drop=0.0),
            ),
        ),
    ),
    occ_head=dict(embed_dims=embed_dims, out_dim=16),
)

train_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, queue_length=queue_length),
)
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

max_epochs = 4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1),
)
log_processor = dict(window_size=1)
randomness = dict(seed=0)
