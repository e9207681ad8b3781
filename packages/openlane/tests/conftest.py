"""Shared fixtures of the openlane tests: sample-data location and the official devkit."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def devkit_evaluate():
    """`devkit_evaluate(version)` → the official evaluate function, or skip with the reason."""
    from interndrive.openlane import devkit_compat

    cache: dict[str, object] = {}

    def get(version: str):
        if version not in cache:
            try:
                cache[version] = devkit_compat.load_devkit_evaluate(version, download=True)
            except ImportError as err:
                cache[version] = err
        if isinstance(cache[version], ImportError):
            pytest.skip(f'official devkit for metric v{version} unavailable: {cache[version]}')
        return cache[version]

    return get
