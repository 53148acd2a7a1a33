"""``deepbox.utils.data`` is ``deepbox.data``, as ``torch.utils.data`` is in PyTorch.

This module replaces itself in ``sys.modules`` with the ``deepbox.data`` package (and
registers its submodules under this name too), so that ``import deepbox.utils.data``,
``from deepbox.utils.data import DataLoader`` and
``from deepbox.utils.data.dataloader import default_collate`` all reach the same objects.
"""
from __future__ import annotations

import sys

import deepbox.data as _data
from deepbox.data import collate, dataloader, dataset, distributed, sampler  # noqa: F401  (registered below)

for _sub in ("collate", "dataloader", "dataset", "distributed", "sampler"):
    sys.modules[f"{__name__}.{_sub}"] = sys.modules[f"deepbox.data.{_sub}"]
sys.modules[__name__] = _data
