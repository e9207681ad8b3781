# mmengine runtime of the occupancy configs (upstream `default_runtime.py`, mmengine 0.10 keys).
# `interndrive train/test` swaps CheckpointHook for its atomic hook and the loops for resumable /
# scene-ordered ones (common/docs/tooling.md); the keys below stay valid for a plain mmengine Runner.
task = 'occupancy'
default_scope = 'mmdet3d'
custom_imports = dict(
    imports=['interndrive.occupancy.registration'],  # dataset, transforms, metric, model, backbone, BEV
    allow_failed_imports=False,
)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
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
