# VectorMapNet with ResNet-50 (caffe, DCNv2 in stages 3-4) — upstream `HDM/src/configs/vectormapnet.py`.
# Published: 42.79 mAP on the challenge val set (not reproduced here). Differences to the InternImage
# config: backbone, FPN in_channels, caffe BGR normalisation, method name.
_base_ = ['./vectormapnet_intern.py']

img_norm_cfg = dict(mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
model = dict(
    backbone_cfg=dict(
        img_backbone=dict(
            _delete_=True,
            type='mmdet.ResNet',
            depth=50,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=False),
            norm_eval=True,
            style='caffe',
            dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
            stage_with_dcn=(False, False, True, True),
            init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet50_caffe'),
        ),
        img_neck=dict(in_channels=[256, 512, 1024, 2048]),
    ),
)
train_pipeline = [
    dict(type='HDMapVectorizeMap', roi_size=(60, 30), simplify_tolerance=0.2, normalize=True),
    dict(type='HDMapPolygonizeLocalMapBbox', canvas_size=(200, 100), min_bbox_size=4 / 200),
    dict(type='HDMapLoadMultiViewImages'),
    dict(type='HDMapResizeMultiViewImages', size=(256, 455)),
    dict(type='HDMapNormalizeMultiViewImages', **img_norm_cfg),
    dict(type='HDMapPadMultiViewImages', size_divisor=32, upstream_pad_rescale=False),
    dict(type='HDMapPackInputs'),
]
test_pipeline = train_pipeline[2:]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
_meta = dict(
    use_lidar=False, use_camera=True, use_external=False, output_format='vector',
    method='VectorMapNet (ResNet-50)', authors=[],
    **{'e-mail': '', 'institution / company': '', 'country / region': ''},
)  # fmt: skip
val_evaluator = dict(meta=_meta)
test_evaluator = val_evaluator
