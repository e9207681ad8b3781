# The tiny CPU model (olv2_tiny_cpu.py) on the *real* OpenLane-V2 layout: every view is scaled to
# 1/16 right after loading (2048×1550 → 128×97; the portrait front view → 97×128 then resized like
# the others), so a laptop CPU can run train/test on the official sample or subset_A. Measured on
# 2 shared CPU cores (load ≈ 4–5) with full-size synthetic frames: ≈ 0.8 s and 1.0 GB per training
# step (0.1–0.3 s of it reading and scaling the 7 JPEGs), against ≈ 43 s and 8.8 GB for the same
# tiny model at full resolution. For checking the pipeline on real data, not for accuracy.
_base_ = ['./olv2_tiny_cpu.py']

data_root = 'data/OpenLane-V2/'
image_scale = 0.0625

train_pipeline = [
    dict(type='OLV2LoadMultiViewImages'),
    dict(type='OLV2ScaleMultiViewImage', scale=image_scale),  # before the photometric steps: cheap
    dict(type='OLV2PhotoMetricDistortion'),
    dict(type='OLV2ResizeFrontView', upstream_swap=False),
    dict(type='OLV2NormalizeMultiViewImage'),
    dict(type='OLV2PadMultiViewImage', size_divisor=32),
    dict(type='OLV2ParameterizeLane', n_control=5),
    dict(type='PackOpenLaneV2Inputs'),
]
test_pipeline = [
    dict(type='OLV2LoadMultiViewImages'),
    dict(type='OLV2ScaleMultiViewImage', scale=image_scale),
    dict(type='OLV2ResizeFrontView', upstream_swap=False),
    dict(type='OLV2NormalizeMultiViewImage'),
    dict(type='OLV2PadMultiViewImage', size_divisor=32),
    dict(type='PackOpenLaneV2Inputs'),
]

train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'data_dict_subset_A_val.pkl')
test_evaluator = val_evaluator
