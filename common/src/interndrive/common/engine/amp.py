"""`--amp`: mixed precision on CUDA (float16 + loss scaling) and on CPU (bfloat16 autocast).

mmengine's AmpOptimWrapper asserts that a GPU/NPU/MLU is present, so on CPU we register
`CpuBF16OptimWrapper`, a plain OptimWrapper whose forward runs under
`torch.autocast('cpu', dtype=torch.bfloat16)`. bfloat16 has float32's exponent range, so no loss
scaling is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .checks import ConfigError

_AMP_ONLY_KEYS = ('loss_scale', 'dtype', 'use_fsdp')


@OPTIM_WRAPPERS.register_module()
class CpuBF16OptimWrapper(OptimWrapper):
    """OptimWrapper running the model's forward under CPU bfloat16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


def configure_amp(cfg, cuda: bool | None = None) -> str:
    """Switches the config's optim_wrapper to mixed precision; returns the wrapper type chosen.

    Args:
        cfg: mmengine Config with an `optim_wrapper` dict.
        cuda: Whether training runs on CUDA; defaults to `torch.cuda.is_available()`.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict):
        raise ConfigError(
            '--amp: the config has no optim_wrapper dict to switch to mixed precision'
        )
    current = wrapper.get('type', 'OptimWrapper')
    if current not in ('OptimWrapper', 'AmpOptimWrapper', 'CpuBF16OptimWrapper'):
        raise ConfigError(
            f'--amp: optim_wrapper type {current!r} is custom; set mixed precision in the config'
        )
    if cuda:
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        if not hasattr(torch, 'bfloat16'):
            raise ConfigError('--amp on CPU needs bfloat16 autocast, which this torch lacks')
        wrapper['type'] = 'CpuBF16OptimWrapper'
        for key in _AMP_ONLY_KEYS:
            wrapper.pop(key, None)
    return wrapper['type']
