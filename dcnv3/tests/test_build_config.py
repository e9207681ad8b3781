"""The build's torch discovery (`cmake/TorchFromPython.cmake`), configured on its own with CMake.

Two promises of the build are checked without compiling anything:
- inside pip's isolated build the interpreter cannot import the environment's torch; the build must
  still find that torch (not download or use another one), so the extension loads at run time;
- without any torch the configure step stops with one message naming the interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

CMAKE_DIR = Path(__file__).resolve().parents[1] / 'cmake'
# The environment's own cmake (the build tools the nox session installs) before any system one.
CMAKE = shutil.which('cmake', path=str(Path(sys.executable).parent)) or shutil.which('cmake')

pytestmark = pytest.mark.skipif(CMAKE is None, reason='needs cmake on PATH')


def _configure(tmp_path: Path, python: Path) -> subprocess.CompletedProcess[str]:
    source = tmp_path / 'src'
    source.mkdir()
    (source / 'CMakeLists.txt').write_text(
        'cmake_minimum_required(VERSION 3.18)\n'
        'project(probe LANGUAGES NONE)\n'
        f'include("{CMAKE_DIR.as_posix()}/TorchFromPython.cmake")\n'
        'message(STATUS "probe: TORCH_LOCATION=${TORCH_LOCATION}")\n'
    )
    return subprocess.run(
        [CMAKE, '-S', str(source), '-B', str(tmp_path / 'build'), f'-DPython_EXECUTABLE={python}'],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wrapper(tmp_path: Path, body: str) -> Path:
    script = tmp_path / 'python-wrapper'
    script.write_text(f'#!/bin/sh\n{body}\n')
    script.chmod(0o755)
    return script


def test_finds_the_environments_torch_when_site_packages_are_hidden(tmp_path: Path) -> None:
    import torch

    # Like pip's isolated build environment: the same interpreter (sys.prefix and sysconfig still name
    # this environment) with its site-packages removed from sys.path by a sitecustomize module.
    torch_dir = Path(torch.__file__).parent
    if torch_dir.parent not in {Path(sysconfig.get_paths()[k]) for k in ('purelib', 'platlib')}:
        pytest.skip(f'torch at {torch_dir} is not in this interpreter own site-packages')
    overlay = tmp_path / 'overlay'
    overlay.mkdir()
    (overlay / 'sitecustomize.py').write_text(
        'import sys\nsys.path[:] = [p for p in sys.path if "site-packages" not in p]\n'
    )
    python = _wrapper(tmp_path, f'PYTHONPATH="{overlay}" exec "{sys.executable}" "$@"')
    hidden = subprocess.run([str(python), '-c', 'import torch'], capture_output=True, text=True)
    assert hidden.returncode != 0, 'the wrapper was supposed to hide torch'
    done = _configure(tmp_path, python)
    assert done.returncode == 0, done.stderr
    assert f'probe: TORCH_LOCATION={torch_dir}' in done.stdout
    assert f'dcnv3: torch {torch.__version__.split("+")[0]} at {torch_dir}' in done.stdout


def test_missing_torch_is_one_clear_configure_error(tmp_path: Path) -> None:
    # A fresh virtual environment of this interpreter: no torch on its path or in its site-packages.
    venv = tmp_path / 'venv'
    subprocess.run(
        [sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True, timeout=120
    )
    python = venv / 'bin' / 'python'
    done = _configure(tmp_path, python)
    assert done.returncode != 0
    message = ' '.join((done.stdout + done.stderr).split())
    assert 'dcnv3: torch is missing or broken in' in message
    assert 'Install torch in that environment first' in message
    assert "No module named 'torch'" in message
