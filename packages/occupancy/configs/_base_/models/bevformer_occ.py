# BEVFormer-Occ with the reference hyperparameters (REFERENCE.md Part 1 §3.2-3.3): FPN 4 levels of
# 256, BEV 200×200 over ±40 m (0.4 m cells), 4 encoder layers (TSA + SCA, 8 anchors per pillar over
# [-1, 5.4] m), Conv3d decoder to (200, 200, 16, 18), CE over all voxels, GridMask, video test mode.
# The backbone comes from the model config that inherits this file.
point_cloud_range = [-40.0, -40.0, -1.0, 40.0, 40.0, 5.4]
occ_size = [200, 200, 16]
num_classes = 18
embed_dims = 256
ffn_dims = 512
bev_h = 200
bev_w = 200
num_levels = 4
num_cams = 6

model = dict(
    type='BEVFormerOcc',
    use_grid_mask=True,
    grid_mask=dict(use_h=True, use_w=True, rotate=1, offset=False, ratio=0.5, mode=1, prob=0.7),
    use_mask=False,  # upstream: plain CE over all 640k voxels; True = camera-mask-weighted loss
    loss_weight=1.0,
    video_test_mode=True,
    img_neck=dict(
        type='mmdet.FPN',
        in_channels=None,  # set by the model config
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
        use_can_bus=True,
        can_bus_norm=True,
        use_cams_embeds=True,
        use_prev_bev=True,
        rotate_prev_bev=True,
        use_shift=True,
        # Correct defaults for new training. To run the released upstream checkpoint set
        # bev_axes='right_forward', rotate_center=[100, 100] and encoder.reproduce_shift_ref_2d_bug=True.
        bev_axes='forward_left',
        encoder=dict(
            type='BEVFormerEncoder',
            num_layers=4,
            num_points_in_pillar=8,
            image_size_key='pad_shape',
            return_intermediate=False,
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
    occ_head=dict(pillar_h=16, num_classes=num_classes, out_dim=32, occ_size=occ_size),
)
