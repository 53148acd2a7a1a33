"""Every collective on 2 ranks against NumPy, and the errors a rank gets for a mismatched call."""
from __future__ import annotations

import pytest

from tests.distributed import collective_checks
from tests.distributed.mpi_jobs import names_in, run_checks

NAMES = names_in(collective_checks)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_checks("collective_checks", NAMES, str(tmp_path_factory.mktemp("collectives")))


@pytest.mark.parametrize("name", ["before_init"] + NAMES)
def test_collective_on_two_ranks(results, name):
    for rank, res in enumerate(results):
        assert res.get(name) == "ok", f"rank {rank}, check {name}:\n{res.get(name)}"
