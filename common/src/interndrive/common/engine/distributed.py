"""Launcher detection and process-group set-up for one CPU, one GPU, many GPUs and many nodes.

`torchrun` exports RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT to every process; their
presence selects mmengine's `pytorch` launcher, their absence the single-process `none` launcher.
The backend is NCCL when CUDA is available and gloo otherwise.

We initialise the process group ourselves before building the Runner (mmengine then skips its own
`init_dist`) because mmengine's `pytorch` launcher calls `torch.cuda.set_device`, which fails on a
CPU-only torch build, and its default DDP wrapper passes `device_ids=[LOCAL_RANK]`, which DDP rejects
for CPU modules.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Mapping

# torch is imported inside the functions: the CLI imports this module for --help and light commands.

TORCHRUN_ENV_VARS = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
LAUNCHERS = ('auto', 'none', 'pytorch', 'slurm')


def detect_launcher(env: Mapping[str, str] | None = None) -> str:
    """Returns `'pytorch'` when launched by torchrun (its env vars are set), else `'none'`."""
    env = os.environ if env is None else env
    return 'pytorch' if all(k in env for k in TORCHRUN_ENV_VARS) else 'none'


def resolve_launcher(requested: str = 'auto', env: Mapping[str, str] | None = None) -> str:
    """Turns the `--launcher` argument into an mmengine launcher name."""
    if requested not in LAUNCHERS:
        from .checks import ConfigError

        raise ConfigError(f'--launcher {requested!r}: expected one of {", ".join(LAUNCHERS)}')
    return detect_launcher(env) if requested == 'auto' else requested


def default_backend() -> str:
    """NCCL on CUDA machines, gloo on CPU-only ones."""
    import torch

    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_distributed(backend: str | None = None, timeout_s: int = 1800) -> tuple[int, int]:
    """Initialises the default process group from torchrun's env vars; returns (rank, world_size).

    Does nothing (and returns the current rank/world size) when a group already exists.
    """
    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    backend = backend or default_backend()
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()


def configure_launcher(cfg, launcher: str) -> None:
    """Writes the launcher, backend and a CPU-compatible DDP wrapper into an mmengine Config.

    Args:
        cfg: The mmengine Config about to be given to `Runner.from_cfg`.
        launcher: `'none'`, `'pytorch'` or `'slurm'` (see `resolve_launcher`).
    """
    import torch

    cfg.launcher = launcher
    # Copy-modify-assign: ConfigDict converts assigned dicts, so setdefault() results are detached.
    env_cfg = dict(cfg.get('env_cfg') or {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    # A config written for GPUs says backend='nccl'; on a CPU-only machine that cannot work at all.
    if not torch.cuda.is_available() or 'backend' not in dist_cfg:
        dist_cfg['backend'] = default_backend()
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg
    if launcher != 'none' and not torch.cuda.is_available():
        wrapper = cfg.get('model_wrapper_cfg') or {}
        wrapper = dict(wrapper)
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper


def _initialized_dist():
    """torch.distributed if this process imported it and created a group, else None."""
    dist = sys.modules.get('torch.distributed')
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


def barrier() -> None:
    """`dist.barrier()` when a process group exists, else nothing."""
    dist = _initialized_dist()
    if dist is not None:
        dist.barrier()


def destroy_distributed() -> None:
    """Destroys the default process group if this process created one."""
    dist = _initialized_dist()
    if dist is not None:
        dist.destroy_process_group()
