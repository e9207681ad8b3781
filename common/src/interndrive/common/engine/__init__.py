"""Shared train/test tooling on top of mmengine's Runner.

Importing this package registers into mmengine's root registries (visible from the mmdet/mmdet3d
child registries): the `interndrive_atomic_local` file backend, `AtomicCheckpointHook`,
`ResumableTrainSampler`, `SceneContiguousSampler`, `ResumableEpochBasedTrainLoop`,
`SceneOrderedValLoop`, `SceneOrderedTestLoop`, `CpuBF16OptimWrapper` and the `AtomicDumpResults`
metric.

Modules: `checks` (one-line user errors), `atomic_io`, `distributed`, `samplers`, `loops`,
`ordered_eval`, `seeding`, `amp`, `checkpoint_match`, `resume`, `progress`, `config`, `dump_results`,
`workflow` (train/test drivers).
"""

from . import amp, atomic_io, checkpoint_loading, dump_results, loops, samplers
from .atomic_io import (
    AtomicCheckpointHook,
    AtomicLocalBackend,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
)
from .checks import (
    CheckpointMismatchError,
    ConfigError,
    InterndriveError,
    MissingPathError,
    SplitError,
    require_dir,
    require_file,
    require_split,
)
from .loops import ResumableEpochBasedTrainLoop, SceneOrderedTestLoop, SceneOrderedValLoop
from .progress import track
from .samplers import ResumableTrainSampler, SceneContiguousSampler
from .seeding import sample_rng

__all__ = [
    'AtomicCheckpointHook',
    'AtomicLocalBackend',
    'CheckpointMismatchError',
    'ConfigError',
    'InterndriveError',
    'MissingPathError',
    'ResumableEpochBasedTrainLoop',
    'ResumableTrainSampler',
    'SceneContiguousSampler',
    'SceneOrderedTestLoop',
    'SceneOrderedValLoop',
    'SplitError',
    'amp',
    'atomic_io',
    'atomic_torch_save',
    'atomic_write_bytes',
    'atomic_write_text',
    'checkpoint_loading',
    'dump_results',
    'loops',
    'require_dir',
    'require_file',
    'require_split',
    'sample_rng',
    'samplers',
    'track',
]
