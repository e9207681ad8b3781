"""Shared fixtures: the real sample data in ../shared/data (relative to the repo root) when present."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
AV2_LOG = SHARED_DATA / 'av2-log' / '7fab2350-7eaf-3b7e-a39d-6937a4c1bede'


@pytest.fixture(scope='session')
def av2_log() -> Path:
    if not (AV2_LOG / 'map').is_dir():
        pytest.skip(
            f'real AV2 sample log not found at {AV2_LOG} (only in the development checkout)'
        )
    pytest.importorskip(
        'av2.map.map_api', reason='the av2 package (and a numpy-compatible pyarrow)'
    )
    return AV2_LOG


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Runs each test with one torch thread. The tests use tiny tensors, where a second intra-op thread
    only adds synchronisation; on the shared 2-core machine (load > 2) that made model tests 10-20x
    slower (e.g. 23 s instead of 0.1 s). Numbers do not depend on the thread count."""
    torch = sys.modules.get(
        'torch'
    )  # the metric/format tests never import torch: do not import it here
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
