"""Loading of the compiled operator library and its Python-side registrations.

The C++ library (``_C*.so``) defines the ``dcnv3::dcnv3_forward`` / ``dcnv3::dcnv3_backward`` schemas
and their CPU (and, when compiled, CUDA) kernels through ``TORCH_LIBRARY``. Autograd and the
fake (meta) implementations are registered here, in Python, as the torch custom-op guide recommends,
so ``torch.compile`` and ``torch.export`` can trace models that use the op.

The package must import without the library: everything here degrades to ``has_compiled_ops() ==
False`` and the callers fall back to the pure-PyTorch reference.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import torch

__all__ = ['has_compiled_ops', 'has_cuda_kernel', 'library_path', 'load_error']

_LOADED = False
_LOAD_ERROR: str | None = None
_LIBRARY_PATH: Path | None = None


def _candidate_paths() -> list[Path]:
    """Where the compiled library may be: next to this file, then in an installed ``dcnv3`` wheel.

    The second location lets the team import the sources via ``PYTHONPATH=dcnv3/src`` while the
    compiled library comes from ``pip install ./dcnv3`` into the active environment.
    """
    here = Path(__file__).resolve().parent
    found = sorted(here.glob('_C*.so')) + sorted(here.glob('_C*.pyd'))
    try:
        dist = importlib.metadata.distribution('dcnv3')
        for file in dist.files or ():
            name = str(file)
            if name.startswith('dcnv3/_C') and name.endswith(('.so', '.pyd')):
                located = Path(str(dist.locate_file(file))).resolve()
                if located.exists() and located not in found:
                    found.append(located)
    except importlib.metadata.PackageNotFoundError:
        pass
    # Newest first: a fresh `pip install` must win over a stale copy left in the source tree.
    return sorted(found, key=lambda path: path.stat().st_mtime, reverse=True)


def _load() -> None:
    global _LOADED, _LOAD_ERROR, _LIBRARY_PATH
    if os.environ.get('DCNV3_DISABLE_EXTENSION', '') not in ('', '0'):
        _LOAD_ERROR = 'disabled by DCNV3_DISABLE_EXTENSION'
        return
    if hasattr(torch.ops.dcnv3, 'dcnv3_forward'):  # already loaded (e.g. a second import path)
        _LOADED = True
        return
    candidates = _candidate_paths()
    if not candidates:
        _LOAD_ERROR = (
            'compiled module dcnv3/_C*.so not found (build it with '
            '`pip install --no-build-isolation ./dcnv3`)'
        )
        return
    errors = []
    for path in candidates:
        try:
            torch.ops.load_library(str(path))
        except (OSError, RuntimeError) as exc:  # ABI mismatch, missing libtorch_cuda, ...
            errors.append(f'{path}: {exc}')
            continue
        _LOADED = True
        _LIBRARY_PATH = path
        return
    _LOAD_ERROR = 'could not load the compiled module: ' + '; '.join(errors)


def has_compiled_ops() -> bool:
    """True when the C++ extension is loaded (CPU kernel available)."""
    return _LOADED


def has_cuda_kernel() -> bool:
    """True when the extension was compiled with the CUDA kernel."""
    if not _LOADED:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key('dcnv3::dcnv3_forward', 'CUDA')


def load_error() -> str | None:
    """Why the compiled module is not available (None when it is)."""
    return _LOAD_ERROR


def library_path() -> Path | None:
    """Path of the loaded compiled library."""
    return _LIBRARY_PATH


def _register_python_side() -> None:
    """Fake implementations and autograd for the C++ ops."""

    @torch.library.register_fake('dcnv3::dcnv3_forward')
    def _forward_fake(
        input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, group, group_channels, offset_scale, remove_center,
    ):  # fmt: skip
        n, _, _, channels = input.shape
        return input.new_empty((n, offset.shape[1], offset.shape[2], channels))

    @torch.library.register_fake('dcnv3::dcnv3_backward')
    def _backward_fake(
        grad_output, input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, group, group_channels, offset_scale, remove_center,
    ):  # fmt: skip
        return torch.empty_like(input), torch.empty_like(offset), torch.empty_like(mask)

    def _setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:3])
        ctx.params = inputs[3:]

    def _backward(ctx, grad_output):
        input, offset, mask = ctx.saved_tensors
        grad_input, grad_offset, grad_mask = torch.ops.dcnv3.dcnv3_backward(
            grad_output.contiguous(), input, offset, mask, *ctx.params
        )
        return (grad_input, grad_offset, grad_mask) + (None,) * len(ctx.params)

    torch.library.register_autograd('dcnv3::dcnv3_forward', _backward, setup_context=_setup_context)


_load()
if _LOADED and _LIBRARY_PATH is not None:  # loaded by us: register once
    _register_python_side()
