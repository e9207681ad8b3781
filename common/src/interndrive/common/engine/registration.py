"""Importing this module registers the tooling's components into mmengine's root registries.

The CLI's workflows import it before building a Runner. Code that builds a Runner by itself adds
`custom_imports = dict(imports=['interndrive.common.engine.registration'])` to its config.
"""

from . import (  # noqa: F401  (imported for their @register_module side effects)
    amp,
    atomic_io,
    checkpoint_loading,
    dump_results,
    loops,
    samplers,
)

REGISTERED = {
    'file backend': ['interndrive_atomic_local'],
    'HOOKS': ['AtomicCheckpointHook'],
    'DATA_SAMPLERS': ['ResumableTrainSampler', 'SceneContiguousSampler'],
    'LOOPS': [
        'ResumableEpochBasedTrainLoop',
        'ResumableIterBasedTrainLoop',
        'SceneOrderedValLoop',
        'SceneOrderedTestLoop',
    ],
    'OPTIM_WRAPPERS': ['CpuBF16OptimWrapper'],
    'METRICS': ['AtomicDumpResults'],
}
