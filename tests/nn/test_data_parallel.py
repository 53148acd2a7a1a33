"""nn.DataParallel on the CPU: the wrapped module's output, torch's state-dict keys (module. prefix) and repr."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as nn
from tests.helpers import copy_torch_weights


def test_data_parallel_runs_the_module_with_torch_layout():
    tm = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).double())
    dm = nn.DataParallel(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).double(), device_ids=[0, 1])
    assert list(dm.state_dict()) == list(tm.state_dict())
    copy_torch_weights(tm, dm)
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(dm(deepbox.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy())
    assert repr(dm) == repr(tm)
    assert dm.device_ids == tm.device_ids == []
    with pytest.raises(TypeError, match="Module"):
        nn.DataParallel(lambda t: t)
