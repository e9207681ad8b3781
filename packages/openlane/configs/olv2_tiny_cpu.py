# Tiny ROAD_BEVFormer for CPU tests and `interndrive demo openlane`: the same architecture and code
# path as internimage-s.py, scaled down (InternImage with 16 channels and one block per stage, 32
# channels everywhere, 10×20 BEV of 5.12 m cells, one BEV layer, 2-layer heads, 20 lane /
# 10 TE queries). Meant for the synthetic dataset (`interndrive openlane generate
# --image-scale 0.0625 --convert`: 128×97 images); not a model to train for accuracy.
_base_ = ['./internimage-s.py']

data_root = 'work_dirs/olv2_demo/data/'  # the demo writes here; override per run
embed_dims = 32
ffn_dims = 64
bev_h = 10
bev_w = 20


def _decoder(num_levels, num_layers=2):
    return dict(
        num_layers=num_layers,
        return_intermediate=True,
        post_norm_cfg=None,  # post-norm layers: no extra norm after the stack
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.0),
        ),
    )


model = dict(
    img_backbone=dict(
        channels=16,
        depths=[1, 1, 1, 1],
        groups=[1, 2, 4, 8],
        mlp_ratio=2.0,
        drop_path_rate=0.0,
        init_cfg=None,
    ),
    img_neck=dict(in_channels=[16, 32, 64, 128], out_channels=embed_dims),
    bev_constructor=dict(
        bev_h=bev_h,
        bev_w=bev_w,
        embed_dims=embed_dims,
        encoder=dict(
            num_layers=1,
            transformerlayers=dict(
                attn_cfgs=[
                    dict(type='TemporalSelfAttention', embed_dims=embed_dims, num_levels=1),
                    dict(
                        type='SpatialCrossAttention',
                        embed_dims=embed_dims,
                        num_cams=7,
                        deformable_attention=dict(
                            type='MSDeformableAttention3D',
                            embed_dims=embed_dims,
                            num_points=4,
                            num_levels=4,
                        ),
                    ),
                ],
                ffn_cfgs=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.0),
            ),
        ),
    ),
    lane_head=dict(
        bev_h=bev_h, bev_w=bev_w, num_query=20, embed_dims=embed_dims, decoder=_decoder(1)
    ),
    te_head=dict(
        num_query=10,
        embed_dims=embed_dims,
        encoder=dict(
            _delete_=True,
            num_layers=1,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_levels=4, batch_first=True),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=ffn_dims, ffn_drop=0.0),
            ),
        ),
        decoder=_decoder(4),
    ),
    lclc_head=dict(in_channels_o1=embed_dims, in_channels_o2=embed_dims),
    lcte_head=dict(in_channels_o1=embed_dims, in_channels_o2=embed_dims),
)

train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'data_dict_subset_A_val.pkl')
test_evaluator = val_evaluator

max_epochs = 2
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
