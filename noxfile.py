"""Sessions of the interndrive monorepo: one per package, plus lint, demo and bench.

`nox` with no arguments runs lint and every package's tests (what CI runs). Each package session builds
its own virtualenv with the pinned base stack (ci/base_env.py) and installs exactly that package and its
local dependencies, so a package that forgets to declare a dependency fails here, not on a user's machine.
Extra positional arguments go to pytest: `nox -s occupancy -- -k metric -x`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / 'ci'))
import base_env  # noqa: E402  (ci/ is not a package; the recipe lives there so CI scripts share it)
from affected import TASKS  # noqa: E402  (one list of task packages for nox and ci/affected.py)

CONSTRAINTS = str(base_env.CONSTRAINTS)
OPENLANEV2 = 'openlanev2==2.1.0'  # installed --no-deps: see packages/openlane/README.md

nox.options.sessions = ['lint', 'dcnv3', 'common', *TASKS]
nox.options.reuse_venv = 'yes'
nox.options.error_on_missing_interpreters = True

base_env.preflight()


def _run_pip(session: nox.Session):
    def run(args, env):
        session.install(*args, env=dict(env or {}))

    return run


def _source_hash(folder: Path) -> str:
    """Hash of the files that determine the dcnv3 build (sources, CMake, pyproject, pins)."""
    digest = hashlib.sha256()
    skip = {'build', '__pycache__', '.pytest_cache', 'benchmarks', 'tests'}
    for path in sorted(folder.rglob('*')):
        rel = path.relative_to(folder)
        if (
            path.is_file()
            and not skip.intersection(rel.parts)
            and path.suffix not in {'.so', '.pyc'}
        ):
            digest.update(str(rel).encode())
            digest.update(path.read_bytes())
    digest.update(base_env.CONSTRAINTS.read_bytes())
    return digest.hexdigest()[:16]


def _dcnv3_wheel(session: nox.Session, *, cuda: str = 'OFF') -> str:
    """Builds the dcnv3 wheel once per source state and torch pin; later sessions reuse it."""
    out = ROOT / '.nox' / '_wheels' / f'dcnv3-{_source_hash(ROOT / "dcnv3")}-cuda{cuda}'
    wheels = sorted(out.glob('dcnv3-*.whl'))
    if not wheels:
        session.run(
            'python', '-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps',
            '-w', str(out), str(ROOT / 'dcnv3'),
            env={'DCNV3_WITH_CUDA': cuda, 'CMAKE_BUILD_PARALLEL_LEVEL': '2'},
        )  # fmt: skip
        wheels = sorted(out.glob('dcnv3-*.whl'))
    return str(wheels[-1])


def _install(session: nox.Session, *packages: str, with_mm: bool = True) -> None:
    base_env.install_base(_run_pip(session), with_mm=with_mm)
    # `[test]` pulls a package's test-only needs where it declares them (pip ignores a missing extra).
    local = [f'{ROOT / p}[test]' for p in packages if p != 'dcnv3']
    wheel = _dcnv3_wheel(session)
    # The wheel's version never changes, so in a reused venv pip would keep an older build:
    # reinstall it (no deps: torch is already pinned) whenever the sources changed.
    session.install('--force-reinstall', '--no-deps', wheel)
    session.install('-c', CONSTRAINTS, wheel, *local)
    if 'packages/openlane' in packages:
        session.install('--no-deps', OPENLANEV2)


def _pytest(session: nox.Session, tests: str) -> None:
    # src layouts keep the sources off sys.path, so these tests exercise the *installed* packages.
    session.run(
        'python', '-m', 'pytest', str(ROOT / tests),
        '-c', str(ROOT / 'pyproject.toml'), '--rootdir', str(ROOT), *session.posargs,
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check over the whole monorepo."""
    session.install('ruff==0.17.6')  # pinned: new rules in later releases must not break CI
    session.run('ruff', 'check', str(ROOT))
    session.run('ruff', 'format', '--check', str(ROOT))


@nox.session
def dcnv3(session: nox.Session) -> None:
    """Builds the DCNv3 operator (CPU; CUDA when available) and runs its tests."""
    _install(session, 'dcnv3', with_mm=False)
    _pytest(session, 'dcnv3/tests')


@nox.session(name='dcnv3-cuda-build', default=False)
def dcnv3_cuda_build(session: nox.Session) -> None:
    """Compiles the CUDA kernel against a CUDA build of torch (needs nvcc; ~5.5 GB venv).

    Not part of the default run. On a machine with a GPU the CUDA tests run too.
    """
    session.install('torch==2.14.1', 'numpy==1.26.4', *base_env.BUILD_TOOLS, *base_env.TEST_TOOLS)
    arch = os.environ.get('TORCH_CUDA_ARCH_LIST', '9.0')
    session.run(
        'python', '-m', 'pip', 'install', '--no-build-isolation', '--no-deps', str(ROOT / 'dcnv3'),
        env={'DCNV3_WITH_CUDA': 'ON', 'TORCH_CUDA_ARCH_LIST': arch, 'CMAKE_BUILD_PARALLEL_LEVEL': '2'},
    )  # fmt: skip
    session.run(
        'python',
        '-c',
        'import dcnv3; assert dcnv3.has_cuda_kernel(); print("CUDA kernel compiled")',
    )
    _pytest(session, 'dcnv3/tests')


@nox.session
def common(session: nox.Session) -> None:
    """interndrive-common: InternImage, checkpoints, BEV layers, CLI and tooling."""
    _install(session, 'dcnv3', 'common')
    _pytest(session, 'common/tests')


def _task_session(task: str):
    def run(session: nox.Session) -> None:
        _install(session, 'dcnv3', 'common', f'packages/{task}')
        _pytest(session, f'packages/{task}/tests')

    run.__doc__ = f'interndrive-{task} alone (with dcnv3 and common), then its tests.'
    return run


for _task in TASKS:
    nox.session(name=_task)(_task_session(_task))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: the end-to-end demo on generated data (see README)."""
    _install(session, 'dcnv3', 'common', *(f'packages/{t}' for t in TASKS))
    work_dir = session.posargs[0] if session.posargs else str(ROOT / 'work_dirs' / 'demo')
    session.run('python', str(ROOT / 'ci' / 'demo.py'), '--work-dir', work_dir)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: every `benchmarks/bench_*.py` of every package, each printing its own table."""
    _install(session, 'dcnv3', 'common', *(f'packages/{t}' for t in TASKS))  # devkit included
    scripts = sorted(ROOT.glob('*/benchmarks/bench_*.py')) + sorted(
        ROOT.glob('packages/*/benchmarks/bench_*.py')
    )
    for script in scripts:
        if session.posargs and not any(key in str(script) for key in session.posargs):
            continue
        session.log(f'== {script.relative_to(ROOT)}')
        session.run('python', str(script))
