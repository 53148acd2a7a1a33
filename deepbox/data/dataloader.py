"""``DataLoader``: batches from a dataset, in this process or in worker processes.

The semantics are PyTorch's ``torch.utils.data.DataLoader``. With ``num_workers=0``
batches are fetched in the calling process. With ``num_workers > 0`` each batch
(a list of indices) is sent to one worker process, round robin; workers fetch and
collate it and send it back, and the main process hands batches out in sampler order,
so the batches are the same as with ``num_workers=0``. At most
``prefetch_factor * num_workers`` batches are in flight.

Each worker seeds Python's ``random``, NumPy's global generator and deepbox's default
generator from ``base_seed + worker_id``, where ``base_seed`` is drawn from the
loader's ``generator`` (or deepbox's default one) each epoch; random transforms in
workers are therefore different across workers and reproducible under
``deepbox.manual_seed``. An exception in a worker is re-raised in the main process
with the worker's traceback text in its message.
"""
from __future__ import annotations

import itertools
import os
import pickle
import queue
import random
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deepbox import backend
from deepbox.data.collate import default_collate, default_convert
from deepbox.data.dataset import Dataset, IterableDataset
from deepbox.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

xp = backend.xp

__all__ = ["DataLoader", "get_worker_info", "WorkerInfo", "default_collate", "default_convert"]

# how often a waiting main process checks that its workers are still alive
_WORKER_STATUS_CHECK_INTERVAL = 1.0
# how often an idle worker checks whether it should stop
_WORKER_POLL_INTERVAL = 0.2


# --------------------------------------------------------------------------- worker info


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker process knows about itself (``get_worker_info()`` inside a worker)."""

    id: int
    num_workers: int
    seed: int
    dataset: Dataset


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The current worker's ``WorkerInfo`` inside a DataLoader worker process, ``None`` elsewhere.

    An ``IterableDataset`` uses it to give each worker its own share of the data.
    """
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its traceback text."""

    def __init__(self, exc_info=None, where: str = "in background"):
        if exc_info is None:
            exc_info = sys.exc_info()
        exc_type = exc_info[0]
        try:  # a class defined inside a function cannot travel between processes
            pickle.dumps(exc_type)
        except Exception:
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    # KeyError shows repr(message); this keeps the traceback's line breaks readable
    def __repr__(self):
        return str(self)


# --------------------------------------------------------------------------- fetchers


class _InfiniteConstantSampler(Sampler):
    """The index sampler of an iterable dataset: ``None`` forever."""

    def __iter__(self):
        while True:
            yield None


class _MapDatasetFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        getitems = getattr(dataset, "__getitems__", None)
        self.getitems = getitems if callable(getitems) else None

    def fetch(self, index):
        if self.auto_collation:
            if self.getitems is not None:
                data = self.getitems(index)
            else:
                data = [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class _IterableDatasetFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.dataset_iter = iter(dataset)
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    self.ended = True
                    break
            if len(data) == 0 or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.dataset_iter)
        return self.collate_fn(data)


def _make_fetcher(kind_iterable: bool, dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableDatasetFetcher if kind_iterable else _MapDatasetFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


# --------------------------------------------------------------------------- the worker process


class _IterationEnd:
    """Sent by a worker whose iterable dataset is exhausted."""

    def __init__(self, worker_id: int):
        self.worker_id = worker_id


def _seed_worker(seed: int, worker_id: int, base_seed: int) -> None:
    random.seed(seed)
    backend.manual_seed(seed)
    ss = xp.random.SeedSequence([worker_id, base_seed])
    xp.random.seed(ss.generate_state(4))


def _worker_loop(kind_iterable, dataset, index_queue, result_queue, done_event, auto_collation, collate_fn,
                 drop_last, base_seed, init_fn, worker_id, num_workers):
    global _worker_info
    try:
        seed = base_seed + worker_id
        _seed_worker(seed, worker_id, base_seed)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        where = f"in DataLoader worker process {worker_id}"

        init_exception = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _make_fetcher(kind_iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_exception = ExceptionWrapper(where=where)

        exhausted = False
        while True:
            # the shutdown flag is an Event rather than only a message on the queue: a queue
            # that is garbage collected may stop delivering before the message is sent
            if done_event.is_set():
                break
            try:
                task = index_queue.get(timeout=_WORKER_POLL_INTERVAL)
            except queue.Empty:
                if _parent_gone():
                    break
                continue
            if task is None:  # shut down
                break
            if task[0] == "reset":  # a new epoch for persistent workers
                epoch = task[1]
                exhausted = False
                if kind_iterable and init_exception is None:
                    try:
                        fetcher = _make_fetcher(kind_iterable, dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        init_exception = ExceptionWrapper(where=where)
                continue
            epoch, idx, index = task
            if init_exception is not None:
                data = init_exception
                init_exception = None
            elif exhausted:
                data = _IterationEnd(worker_id)
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not kind_iterable:
                        data = ExceptionWrapper(where=where)
                    else:
                        data = _IterationEnd(worker_id)
                        exhausted = True
                except Exception:
                    data = ExceptionWrapper(where=where)
            try:
                # pickled here, so that a batch that cannot be pickled is reported, not lost
                payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                payload = pickle.dumps(ExceptionWrapper(where=where + " while sending its batch"))
            result_queue.put((epoch, idx, payload))
            del data, payload
    except KeyboardInterrupt:
        pass  # the main process gets the interrupt too and raises it
    # a batch still in the pipe must not keep this process from exiting once the main
    # process has stopped reading
    result_queue.cancel_join_thread()


def _parent_gone() -> bool:
    import multiprocessing

    if os.getppid() == 1:
        return True
    parent = multiprocessing.parent_process()
    return parent is not None and not parent.is_alive()


# --------------------------------------------------------------------------- iterators


class _BaseDataLoaderIter:
    def __init__(self, loader: DataLoader):
        self._dataset = loader.dataset
        self._kind_iterable = isinstance(loader.dataset, IterableDataset)
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._timeout = loader.timeout
        self._collate_fn = loader.collate_fn
        self._generator = loader.generator
        self._persistent_workers = loader.persistent_workers
        self._sampler_iter = None
        self._num_yielded = 0
        self._loader_len = None
        self._reset(loader, first_iter=True)

    def _reset(self, loader, first_iter: bool = False):
        self._sampler_iter = iter(self._index_sampler)
        self._num_yielded = 0
        self._IterableDataset_len_called = loader._IterableDataset_len_called
        # drawn every epoch, as PyTorch does, so the default generator advances the same
        # way whatever num_workers is
        self._base_seed = int(backend.rng(self._generator).integers(0, 2**62))

    def __iter__(self):
        return self

    def _next_index(self):
        return next(self._sampler_iter)

    def __next__(self):
        data = self._next_data()
        self._num_yielded += 1
        return data

    def __len__(self) -> int:
        return len(self._index_sampler)

    def _next_data(self):
        raise NotImplementedError


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = _make_fetcher(self._kind_iterable, self._dataset, self._auto_collation,
                                      self._collate_fn, self._drop_last)

    def _next_data(self):
        index = self._next_index()
        return self._fetcher.fetch(index)


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader: DataLoader):
        self._workers = []
        self._shutdown = False
        self._epoch = 0
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        ctx = loader.multiprocessing_context
        if ctx is None:
            import multiprocessing

            ctx = multiprocessing.get_context()
        self._ctx = ctx
        self._worker_init_fn = loader.worker_init_fn
        self._started = False
        super().__init__(loader)

    def _start_workers(self):
        self._result_queue = self._ctx.Queue()
        self._done_event = self._ctx.Event()
        self._index_queues = []
        self._workers = []
        for i in range(self._num_workers):
            iq = self._ctx.Queue()
            iq.cancel_join_thread()
            w = self._ctx.Process(
                target=_worker_loop,
                args=(self._kind_iterable, self._dataset, iq, self._result_queue, self._done_event,
                      self._auto_collation, self._collate_fn, self._drop_last, self._base_seed,
                      self._worker_init_fn, i, self._num_workers),
                daemon=True,
            )
            w.start()
            self._index_queues.append(iq)
            self._workers.append(w)
        self._started = True

    def _reset(self, loader, first_iter: bool = False):
        super()._reset(loader, first_iter)
        if first_iter:
            self._start_workers()
        self._epoch += 1
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info: dict[int, tuple] = {}
        self._tasks_outstanding = 0
        self._workers_status = [True] * self._num_workers
        self._worker_queue_idx_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            # persistent workers: new epoch tag; an iterable dataset restarts its iterator
            for q in self._index_queues:
                q.put(("reset", self._epoch))
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_put_index(self):
        if self._tasks_outstanding >= self._prefetch_factor * self._num_workers:
            return
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_queue_idx = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker_queue_idx]:
                break
        else:
            return  # every worker is exhausted
        self._index_queues[worker_queue_idx].put((self._epoch, self._send_idx, index))
        self._task_info[self._send_idx] = (worker_queue_idx,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        """The next (idx, data) of this epoch from the result queue, watching for dead workers."""
        import time

        deadline = None if self._timeout <= 0 else time.monotonic() + self._timeout
        while True:
            wait = _WORKER_STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                epoch, idx, payload = self._result_queue.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
                dead = [w for w in self._workers if not w.is_alive()]
                if dead:
                    pids = ", ".join(f"{w.pid} (exit code {w.exitcode})" for w in dead)
                    self._shutdown_workers()
                    raise RuntimeError(
                        f"DataLoader worker (pid(s) {pids}) exited unexpectedly; a worker killed by the "
                        "system (out of memory) or a crash in native code does this"
                    ) from None
                continue
            if epoch != self._epoch:
                continue  # a result from an epoch that was abandoned
            return idx, pickle.loads(payload)

    def _next_data(self):
        while True:
            # skip tasks of workers whose iterable dataset has ended
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None:
                    worker_id = info[0]
                    if len(info) == 2 or self._workers_status[worker_id]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration

            if len(self._task_info[self._rcvd_idx]) == 2:
                data = self._task_info.pop(self._rcvd_idx)[1]
                self._rcvd_idx += 1
                return self._process_data(data)

            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _IterationEnd):
                self._workers_status[data.worker_id] = False
                self._task_info.pop(idx, None)
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    del self._task_info[idx]
                    return self._process_data(data)
                self._task_info[idx] += (data,)
                continue
            del self._task_info[idx]
            self._rcvd_idx += 1
            return self._process_data(data)

    def _process_data(self, data):
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _shutdown_workers(self):
        if self._shutdown or not self._started:
            return
        self._shutdown = True
        try:
            import time

            self._done_event.set()
            for q in self._index_queues:
                try:
                    q.put(None)
                except Exception:
                    pass
            # idle workers stop within one poll interval; one still inside a slow
            # __getitem__ is terminated, since its batch is no longer wanted
            deadline = time.monotonic() + 2 * _WORKER_POLL_INTERVAL + 0.5
            for w in self._workers:
                w.join(timeout=max(deadline - time.monotonic(), 0.0))
            for w in self._workers:
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=1.0)
            for q in self._index_queues:
                q.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()
        except Exception:
            pass  # best effort while the interpreter shuts down

    def __del__(self):
        self._shutdown_workers()


# --------------------------------------------------------------------------- DataLoader


class DataLoader:
    """Iterates over a dataset in batches, PyTorch's ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style ``Dataset`` (``__getitem__``/``__len__``) or an ``IterableDataset``.
        batch_size: samples per batch (default 1); ``None`` turns batching off.
        shuffle: reshuffle the indices every epoch (map-style datasets only).
        sampler: an iterable of indices to draw from (exclusive with ``shuffle``).
        batch_sampler: an iterable of index lists (exclusive with ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``).
        num_workers: worker processes that load batches; 0 loads in this process.
        collate_fn: merges a list of samples into a batch (default ``default_collate``).
        pin_memory: accepted for compatibility; ignored on the CPU.
        drop_last: drop the last incomplete batch.
        timeout: seconds to wait for a batch from the workers before raising (0: no limit).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: a start method name (``"fork"``, ``"spawn"``,
            ``"forkserver"``) or a ``multiprocessing`` context.
        generator: a ``deepbox.Generator`` for the shuffle order and the workers' base seed.
        prefetch_factor: batches loaded in advance per worker (default 2 with workers).
        persistent_workers: keep the worker processes between epochs.
        in_order: hand out batches in sampler order (``False``: as they arrive).

    Batches from an in-memory dataset with ``__getitems__`` (``TensorDataset``, ``Subset`` of
    one) are fetched with one fancy-index per tensor rather than one call per sample.
    """

    __initialized = False

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Iterable | None = None,
        batch_sampler: Sampler | Iterable | None = None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable | None = None,
        multiprocessing_context=None,
        generator=None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing (got {num_workers!r}).")
        if timeout < 0:
            raise ValueError(f"timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing; let "
                             "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        elif num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"prefetch_factor option should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            if shuffle not in {False, None}:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            if not hasattr(dataset, "__getitem__"):
                raise TypeError(f"DataLoader expects a Dataset with __getitem__ (or an IterableDataset), "
                                f"got {type(dataset).__name__}")

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                                 "with drop_last")
        elif not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")

        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)

        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator

        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers

        self.__initialized = True
        self._IterableDataset_len_called = None
        self._iterator = None
        self.check_worker_number_rationality()

    @property
    def multiprocessing_context(self):
        return self.__multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, multiprocessing_context) -> None:
        if multiprocessing_context is not None:
            import multiprocessing

            if self.num_workers == 0:
                raise ValueError("multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(multiprocessing_context, str):
                methods = multiprocessing.get_all_start_methods()
                if multiprocessing_context not in methods:
                    raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                     f"{methods!r}, but got multiprocessing_context={multiprocessing_context!r}")
                multiprocessing_context = multiprocessing.get_context(multiprocessing_context)
            if not isinstance(multiprocessing_context, multiprocessing.context.BaseContext):
                raise TypeError("multiprocessing_context option should be a valid context object or a string "
                                f"specifying the start method, but got {multiprocessing_context!r}")
        self.__multiprocessing_context = multiprocessing_context

    def __setattr__(self, attr, val) -> None:
        if self.__initialized and attr in ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                                           "persistent_workers"):
            raise ValueError(f"{attr} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _get_iterator(self) -> _BaseDataLoaderIter:
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        return _MultiProcessingDataLoaderIter(self)

    def __iter__(self) -> _BaseDataLoaderIter:
        if self.persistent_workers and self.num_workers > 0:
            if self._iterator is None:
                self._iterator = self._get_iterator()
            else:
                self._iterator._reset(self)
            return self._iterator
        return self._get_iterator()

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            length = self._IterableDataset_len_called = len(self.dataset)
            if self.batch_size is not None:
                from math import ceil

                length = length // self.batch_size if self.drop_last else ceil(length / self.batch_size)
            return length
        return len(self._index_sampler)

    def check_worker_number_rationality(self) -> None:
        if self.num_workers <= 1:
            return
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        if self.num_workers > cpus:
            warnings.warn(
                f"This DataLoader will create {self.num_workers} worker processes in total. Our suggested max "
                f"number of worker in current system is {cpus}, which is smaller than what this DataLoader is "
                "going to create. Please be aware that excessive worker creation might get DataLoader running "
                "slow or even freeze, lower the worker number to avoid potential slowness/freeze if necessary.",
                stacklevel=2,
            )

