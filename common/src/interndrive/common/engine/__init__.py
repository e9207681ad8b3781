"""Shared train/test tooling on top of mmengine's Runner.

Submodules: `checks` (one-line user errors; no torch import, safe for light tools), `atomic_io`,
`distributed`, `samplers`, `loops`, `ordered_eval`, `seeding`, `amp`, `checkpoint_match`,
`checkpoint_loading`, `resume`, `progress`, `config`, `dump_results`, `workflow` (train/test drivers),
`registration` (importing it registers everything into mmengine's registries).

Attributes are loaded lazily (PEP 562) so that `from interndrive.common.engine.checks import ...`
does not import torch: `interndrive evaluate` and `--help` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    'AtomicCheckpointHook': 'atomic_io',
    'AtomicLocalBackend': 'atomic_io',
    'atomic_torch_save': 'atomic_io',
    'atomic_write_bytes': 'atomic_io',
    'atomic_write_text': 'atomic_io',
    'CheckpointMismatchError': 'checks',
    'ConfigError': 'checks',
    'InterndriveError': 'checks',
    'MissingPathError': 'checks',
    'SplitError': 'checks',
    'require_dir': 'checks',
    'require_file': 'checks',
    'require_split': 'checks',
    'ResumableEpochBasedTrainLoop': 'loops',
    'ResumableIterBasedTrainLoop': 'loops',
    'SceneOrderedTestLoop': 'loops',
    'SceneOrderedValLoop': 'loops',
    'ResumableTrainSampler': 'samplers',
    'SceneContiguousSampler': 'samplers',
    'sample_rng': 'seeding',
    'track': 'progress',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
