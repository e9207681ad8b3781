"""The one environment recipe of interndrive, shared by every nox session and by CI.

Order matters and is encoded here once:
1. torch (pinned in ci/constraints.txt; the CPU wheel on development machines) and the build tools
   (setuptools with pkg_resources, wheel, ninja, cmake, scikit-build-core).
2. mmengine, then mmcv 2.1.0 built from source *with ops* (MMCV_WITH_OPS=1) without build isolation, so it
   compiles against the torch already installed. The first build takes ~16 min on 2 cores; pip keeps the
   built wheel in its wheel cache, so every later venv with the same torch reuses it in seconds.
3. mmdet 3.3.0 (normal wheel).
4. mmdet3d 1.4.0 with --no-deps: it declares open3d, lyft-dataset-sdk, waymo etc. which interndrive never
   imports; MMDET3D_RUNTIME lists what `import mmdet3d.{models,datasets,structures,evaluation}` really needs.

The functions take a `run_pip(args, env)` callable so nox sessions and plain scripts share the recipe.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / 'ci' / 'constraints.txt'

SUPPORTED_PYTHONS = ((3, 10), (3, 11), (3, 12))

TORCH = ['torch==2.13.0', 'numpy==1.26.4']
BUILD_TOOLS = [
    # mmcv's setup.py imports pkg_resources (removed in setuptools 81); torch 2.13 needs >= 77.
    'setuptools>=77,<81',
    'wheel',
    'ninja',
    'cmake>=3.26',
    'scikit-build-core>=0.10',
]
MMCV = 'mmcv==2.1.0'
MMENGINE = 'mmengine==0.10.7'
MMDET = 'mmdet==3.3.0'
MMDET3D = 'mmdet3d==1.4.0'
# What mmdet3d 1.4 imports at module level for the parts interndrive uses (checked by
# common/tests/test_stack.py), instead of its declared open3d/lyft/waymo/trimesh dependencies.
MMDET3D_RUNTIME = [
    'networkx>=2.5',
    'numba>=0.57',
    'nuscenes-devkit>=1.1.10,<1.3',
    'plyfile',
    'scikit-image',
    'lyft-dataset-sdk',
    'trimesh',
]
TEST_TOOLS = ['pytest>=8', 'pytest-xdist>=3']

RunPip = Callable[[Sequence[str], Mapping[str, str] | None], None]


def preflight() -> None:
    """Fails early, with one clear message, on what would otherwise break deep inside a build."""
    if sys.version_info[:2] not in SUPPORTED_PYTHONS:
        supported = ', '.join(f'{a}.{b}' for a, b in SUPPORTED_PYTHONS)
        raise SystemExit(
            f'interndrive needs Python {supported}; this is {sys.version.split()[0]} '
            f'({sys.executable}). mmcv 2.1 and the pinned torch have no wheels/builds for it.'
        )
    missing = [tool for tool in ('gcc', 'g++') if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f'interndrive: no C/C++ compiler found ({", ".join(missing)} missing from PATH). '
            'mmcv (with ops) and dcnv3 are compiled from source: install one, e.g. '
            '`apt-get install build-essential`.'
        )


def install_base(run_pip: RunPip, *, with_mm: bool = True) -> None:
    """Installs the pinned base stack into the environment `run_pip` targets."""
    c = ['-c', str(CONSTRAINTS)]
    run_pip([*c, *TORCH, *BUILD_TOOLS, *TEST_TOOLS], None)
    if not with_mm:
        return
    run_pip([*c, MMENGINE], None)
    run_pip(
        ['--no-build-isolation', *c, MMCV],
        {'MMCV_WITH_OPS': '1', 'MAX_JOBS': '2', 'FORCE_CUDA': '0'},
    )
    run_pip([*c, MMDET], None)
    run_pip(['--no-deps', MMDET3D], None)
    run_pip([*c, *MMDET3D_RUNTIME], None)


def main() -> None:
    """`python ci/base_env.py` installs the base stack into the running interpreter's environment."""
    preflight()

    def run_pip(args: Sequence[str], env: Mapping[str, str] | None) -> None:
        import os

        subprocess.run(
            [sys.executable, '-m', 'pip', 'install', *args],
            check=True,
            env={**os.environ, **(env or {})},
        )

    install_base(run_pip)


if __name__ == '__main__':
    main()
