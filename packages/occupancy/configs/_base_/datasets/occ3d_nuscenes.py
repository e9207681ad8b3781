# Occ3D-nuScenes data side of the occupancy configs (dataset, pipelines, dataloaders, evaluators).
# Model configs inherit it with `_base_ = ['../_base_/datasets/occ3d_nuscenes.py']` (path relative to
# the config) and need `custom_imports` / `register_modules` that import interndrive.occupancy.dataset,
# .transforms and .evaluation (see interndrive.occupancy.task.register_data_modules).
# Reference pipeline: REFERENCE.md Part 1 §3.4 (no geometric augmentation, pad to /32).

dataset_type = 'OccupancyDataset'
data_root = 'data/occ3d-nus/'  # nuScenes data root = Occ3D root (annotations.json, gts/)
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
queue_length = 4

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
    dict(type='LoadOccupancyGT'),  # drop for the test split (no ground truth; submission only)
    dict(type='OccNormalizeMultiViewImage', **img_norm_cfg),
    dict(type='OccPadMultiViewImage', size_divisor=32),
    dict(type='PackOccInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=6,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='occ_infos_temporal_train.pkl',
        pipeline=train_pipeline,
        queue_length=queue_length,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    # Whole scenes per rank, frame order kept: temporal BEV reuse sees the same sequences on any GPU count.
    sampler=dict(type='SceneContiguousSampler'),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='occ_infos_temporal_val.pkl',
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='OccupancyMetric', mask='camera')
test_evaluator = val_evaluator
