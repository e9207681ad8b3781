"""Makes the official `openlanev2` devkit import and run on Python 3.11 with current OR-Tools.

Why this exists: every published `openlanev2` (0.1.0, 1.0.0, 1.1.0, 2.1.0) pins scipy==1.8.0 (no
Python 3.11 wheels) and ortools==9.2.9972 (no longer on PyPI), so it is installed with
`pip install --no-deps openlanev2==2.1.0`. Its F-score module then does
`from ortools.graph import pywrapgraph`, a SWIG module that OR-Tools ≥ 9.5 no longer ships (the
min-cost-flow solver moved to `ortools.graph.python.min_cost_flow` with snake_case methods), so
`openlanev2...evaluation` fails at import time. Importing this module registers a small
`ortools.graph.pywrapgraph` whose `SimpleMinCostFlow` forwards the CamelCase API the devkit uses
to the current solver. Nothing else in the devkit needs patching (its data API, `Collection`,
`Frame` and `collect`, import as published).

The devkit is the *reference* we test against and the dataset I/O layer; our own metric
(`interndrive.openlane.metric`) never imports it.

Metric versions: v1.1 comes from the installed 2.1.0 (`openlanev2.centerline.evaluation`). v1.0
(the challenge-era metric of the seed's 0.325 OLS) lives only in devkit 0.1.0/1.0.0, whose
top-level package is also called `openlanev2`; `load_devkit_evaluate('1.0', wheel=...)` unpacks
that wheel into a cache folder under the name `openlanev2_v1_0` (the package only uses relative
imports, so a rename is enough) and imports it beside the installed one.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

V1_0_PACKAGE = 'openlanev2_v1_0'
V1_0_WHEEL_NAME = 'openlanev2-1.0.0-py3-none-any.whl'
DEFAULT_CACHE = Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'interndrive'


class SimpleMinCostFlow:
    """CamelCase facade over `ortools.graph.python.min_cost_flow.SimpleMinCostFlow`."""

    def __init__(self) -> None:
        from ortools.graph.python import min_cost_flow

        self._solver = min_cost_flow.SimpleMinCostFlow()
        self.OPTIMAL = self._solver.OPTIMAL

    def AddArcWithCapacityAndUnitCost(self, tail: int, head: int, capacity: int, cost: int) -> int:
        return self._solver.add_arc_with_capacity_and_unit_cost(tail, head, capacity, cost)

    def SetNodeSupply(self, node: int, supply: int) -> None:
        self._solver.set_node_supply(node, supply)

    def Solve(self) -> Any:
        return self._solver.solve()

    def OptimalCost(self) -> int:
        return self._solver.optimal_cost()

    def NumArcs(self) -> int:
        return self._solver.num_arcs()

    def NumNodes(self) -> int:
        return self._solver.num_nodes()

    def Tail(self, arc: int) -> int:
        return self._solver.tail(arc)

    def Head(self, arc: int) -> int:
        return self._solver.head(arc)

    def Flow(self, arc: int) -> int:
        return self._solver.flow(arc)

    def UnitCost(self, arc: int) -> int:
        return self._solver.unit_cost(arc)

    def Capacity(self, arc: int) -> int:
        return self._solver.capacity(arc)

    def Supply(self, node: int) -> int:
        return self._solver.supply(node)


def install_pywrapgraph_shim() -> None:
    """Registers `ortools.graph.pywrapgraph` unless a real one is importable."""
    import ortools.graph

    try:
        from ortools.graph import pywrapgraph  # noqa: F401  (old OR-Tools: nothing to do)

        return
    except ImportError:
        pass
    shim = types.ModuleType('ortools.graph.pywrapgraph')
    shim.__doc__ = 'interndrive shim: SimpleMinCostFlow CamelCase API on ortools>=9.5.'
    shim.SimpleMinCostFlow = SimpleMinCostFlow
    sys.modules['ortools.graph.pywrapgraph'] = shim
    ortools.graph.pywrapgraph = shim


install_pywrapgraph_shim()


def devkit_available() -> bool:
    """True when `openlanev2` (≥ 2.0 layout, `openlanev2.centerline`) is importable."""
    try:
        importlib.import_module('openlanev2.centerline.evaluation.evaluate')
    except ImportError:
        return False
    return True


def fetch_v1_0_wheel(dest: Path, timeout: float = 60.0) -> Path | None:
    """Downloads the openlanev2 1.0.0 wheel with pip (no dependencies); None when offline."""
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / V1_0_WHEEL_NAME
    if wheel.exists():
        return wheel
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--quiet']
        cmd += ['openlanev2==1.0.0', '-d', tmp]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError):
            return None
        got = Path(tmp) / V1_0_WHEEL_NAME
        if not got.exists():
            return None
        os.replace(got, wheel)
    return wheel


def _import_v1_0(wheel: Path, cache: Path) -> types.ModuleType:
    """Unpacks the 1.0.0 wheel's `openlanev2/` as `openlanev2_v1_0/` and imports its evaluate."""
    root = cache / 'openlanev2-1.0.0'
    if not (root / V1_0_PACKAGE / 'evaluation' / 'evaluate.py').exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if name.startswith('openlanev2/'):
                    zf.extract(name, tmp)
        (tmp / 'openlanev2').rename(tmp / V1_0_PACKAGE)
        try:
            os.replace(tmp, root)
        except OSError:  # another process unpacked it first (or a stale copy): keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            if not (root / V1_0_PACKAGE / 'evaluation' / 'evaluate.py').exists():
                shutil.rmtree(root, ignore_errors=True)
                return _import_v1_0(wheel, cache)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f'{V1_0_PACKAGE}.evaluation.evaluate')


def load_devkit_evaluate(
    version: str, wheel: Path | None = None, cache: Path = DEFAULT_CACHE, download: bool = False
) -> Callable[..., dict]:
    """Returns the official `evaluate(ground_truth, predictions, verbose)` of a metric version.

    Args:
        version: '1.1' (installed openlanev2 2.1.0) or '1.0' (openlanev2 1.0.0 from `wheel`).
        wheel: Path of `openlanev2-1.0.0-py3-none-any.whl` (v1.0 only); looked up in `cache`
            when omitted.
        cache: Folder for the downloaded wheel and its renamed unpacked copy.
        download: For v1.0, fetch the wheel with `pip download` when it is not cached.

    Raises:
        ImportError: the devkit (or the 1.0.0 wheel) is not available, with how to get it.
    """
    if version == '1.1':
        try:
            module = importlib.import_module('openlanev2.centerline.evaluation.evaluate')
        except ImportError as err:
            raise ImportError(
                'metric v1.1 reference needs the official devkit: '
                'pip install --no-deps openlanev2==2.1.0'
            ) from err
        return module.evaluate
    if version != '1.0':
        raise ValueError(f'version must be "1.0" or "1.1", got {version!r}')
    if wheel is None:
        wheel = cache / V1_0_WHEEL_NAME
        if not wheel.exists() and download:
            wheel = fetch_v1_0_wheel(cache) or wheel
    if not Path(wheel).exists():
        raise ImportError(
            f'metric v1.0 reference needs the openlanev2 1.0.0 wheel at {wheel}: '
            f'pip download --no-deps openlanev2==1.0.0 -d {cache}'
        )
    return _import_v1_0(Path(wheel), cache).evaluate
