"""`--amp` end to end on CPU: bfloat16 autocast training through the Runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from test_engine_toys import toy_config_text, toy_task

from interndrive.common.engine.workflow import run_train


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path of --amp')
def test_amp_training_on_cpu_uses_bf16_autocast(tmp_path: Path) -> None:
    config = tmp_path / 'toy.py'
    config.write_text(toy_config_text(max_epochs=1))
    work = run_train(
        str(config), work_dir=tmp_path / 'w', amp=True, tasks={'toy': toy_task(tmp_path)}
    )
    dumped = Config.fromfile(work / 'toy.py')  # the config the Runner actually ran
    assert dumped.optim_wrapper.type == 'CpuBF16OptimWrapper'
    state = torch.load(work / 'iter_3.pth', weights_only=False)['state_dict']
    initial = torch.load(work / 'iter_2.pth', weights_only=False)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values())
    assert all(v.dtype == torch.float32 for v in state.values())  # master weights stay float32
    assert not all(torch.equal(state[k], initial[k]) for k in state)
