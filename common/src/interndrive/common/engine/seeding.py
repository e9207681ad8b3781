"""Per-iteration seeding, so a resumed run draws the same random numbers as an uninterrupted one.

mmengine seeds the global RNGs once at start-up. After a resume, the RNG state is the start-up state,
not the state the killed run had reached, so dropout masks, DropPath and main-process augmentation
would differ from the uninterrupted run. Reseeding from (base seed, global iteration, rank) before each
iteration makes every iteration's randomness a pure function of where training is.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def step_seed(base_seed: int, iteration: int, rank: int = 0) -> int:
    """A 32-bit seed derived from (base seed, iteration, rank) with numpy's SeedSequence mixing."""
    return int(
        np.random.SeedSequence([base_seed & 0xFFFFFFFF, iteration, rank]).generate_state(1)[0]
    )


def seed_everything(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the legacy global RNG is what libraries draw from)
    torch.manual_seed(seed)


def sample_rng(base_seed: int, epoch: int, index: int) -> np.random.Generator:
    """A generator for one sample's augmentation that depends only on (seed, epoch, index).

    Datasets that draw augmentation parameters from it get identical augmentations after a resume and
    for any number of dataloader workers.
    """
    return np.random.default_rng([base_seed & 0xFFFFFFFF, epoch, index])
