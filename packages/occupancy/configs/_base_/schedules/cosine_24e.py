# Upstream schedule (REFERENCE.md Part 1 §3.2): AdamW 2e-4, grad clip 35 (L2), linear warmup
# 500 iterations from 1/3, cosine annealing to 1e-3 × lr over 24 epochs, evaluation every epoch.
# Learning rate is for 8 GPUs × 1 sample; set `auto_scale_lr.enable=True` to rescale.
max_epochs = 24
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    # mmcv-1 `CosineAnnealing` (by_epoch=True): lr changes at epoch boundaries, as upstream.
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=1e-3, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=8)
