"""DCNv3 (deformable convolution v3) operator: compiled CPU/CUDA kernels, reference, modules.

Public API:
    dcnv3(...)                     functional op (compiled kernel, reference fallback)
    DCNv3, DCNv3_pytorch           the InternImage block (upstream-compatible parameter names)
    reference.dcnv3_reference      pure-PyTorch grid_sample reference
    has_compiled_ops()             C++ extension loaded
    has_cuda_kernel()              extension compiled with the CUDA kernel
"""

from . import functions, modules, reference
from ._ops import has_compiled_ops, has_cuda_kernel, load_error
from .functional import dcnv3
from .modules import DCNv3, DCNv3_pytorch
from .reference import dcnv3_reference

__version__ = '0.1.0'

__all__ = [
    'DCNv3',
    'DCNv3_pytorch',
    'dcnv3',
    'dcnv3_reference',
    'functions',
    'has_compiled_ops',
    'has_cuda_kernel',
    'load_error',
    'modules',
    'reference',
]
