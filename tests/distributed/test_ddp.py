"""DistributedDataParallel, SyncBatchNorm and DistributedSampler on 2 ranks, against one process / PyTorch."""
from __future__ import annotations

import pytest

from tests.distributed import ddp_checks
from tests.distributed.mpi_jobs import names_in, run_checks

NAMES = names_in(ddp_checks)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_checks("ddp_checks", NAMES, str(tmp_path_factory.mktemp("ddp")))


@pytest.mark.parametrize("name", NAMES)
def test_ddp_on_two_ranks(results, name):
    for rank, res in enumerate(results):
        assert res.get(name) == "ok", f"rank {rank}, check {name}:\n{res.get(name)}"
