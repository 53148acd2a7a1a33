"""Weight averaging, as in ``torch.optim.swa_utils``: a running average of a model's weights over
the optimiser's steps, evaluated instead of the last weights.

* ``AveragedModel(model, avg_fn=None, multi_avg_fn=None, use_buffers=False)``: a copy of ``model``
  whose ``update_parameters(model)`` folds the model's current weights into the average. The first
  call copies them; later calls apply the averaging function (default: the equal-weight average of
  every call so far, stochastic weight averaging, Izmailov et al., "Averaging Weights Leads to Wider
  Optima and Better Generalization", UAI 2018). ``use_buffers=True`` averages the buffers too (batch
  norm's running statistics); otherwise they are copied from the model at each update.
* ``get_ema_multi_avg_fn(decay)`` / ``get_ema_avg_fn(decay)``: the exponential moving average
  ``W_ema <- decay * W_ema + (1 - decay) * W`` (on a list of tensors in place, or on one tensor).
* ``get_swa_multi_avg_fn()`` / ``get_swa_avg_fn()``: the equal-weight average
  ``W_avg <- W_avg + (W - W_avg) / (n + 1)`` after ``n`` models.
* ``update_bn(loader, model)``: recompute the batch-norm running statistics of ``model`` with one
  pass over ``loader`` (their cumulative average), for an averaged model whose buffers were copied
  rather than averaged.

::

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    for x, y in loader:
        ...; optimizer.step()
        ema.update_parameters(model)
    accuracy(ema(x_test), y_test)        # AveragedModel.forward runs the averaged copy

``avg_fn`` and ``multi_avg_fn`` are not part of ``state_dict`` (which holds ``n_averaged`` and the
copy's ``module.*`` entries, PyTorch's keys).
"""
from __future__ import annotations

import copy

from deepbox import backend
from deepbox.autograd import no_grad
from deepbox.nn.modules.module import Module
from deepbox.nn.modules.normalization import _BatchNorm
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["AveragedModel", "update_bn", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def _count(num_averaged) -> float:
    return float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)


def _floating(t: Tensor) -> bool:
    return t._data.dtype.kind in "fc"


def _check_decay(decay) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def _lerp_(averaged: list, current: list, weight: float) -> None:
    """``a <- a + weight * (c - a)`` in place, in each tensor's own dtype; integer tensors (a batch norm's
    ``num_batches_tracked``) get the value rounded toward zero, as ``copy_`` of a float into an integer does."""
    for a, c in zip(averaged, current, strict=True):
        if _floating(a):
            a._data += (c._data.astype(a._data.dtype, copy=False) - a._data) * a._data.dtype.type(weight)
        else:
            a._data[...] = xp.trunc(a._data + weight * (c._data.astype(xp.float64) - a._data))


def get_ema_multi_avg_fn(decay: float = 0.999):
    """The exponential moving average over lists of tensors, in place: ``W_ema <- decay * W_ema + (1 - decay) * W``.

    ``decay`` must lie in [0, 1]; the function's third argument (the number of models averaged) is unused.
    """
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _) -> None:
        with no_grad():
            if _floating(ema_param_list[0]):
                _lerp_(ema_param_list, current_param_list, 1.0 - decay)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    p_ema._data[...] = xp.trunc(p_ema._data * decay + p_model._data * (1.0 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """The equal-weight average over lists of tensors, in place: ``W_avg <- W_avg + (W - W_avg) / (n + 1)``
    after ``n`` models (the third argument)."""

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        with no_grad():
            _lerp_(averaged_param_list, current_param_list, 1.0 / (_count(num_averaged) + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """The exponential moving average of one tensor: returns ``decay * W_ema + (1 - decay) * W``."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """The equal-weight average of one tensor: returns ``W_avg + (W - W_avg) / (n + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` holding a running average of its weights (SWA, or EMA with an EMA function).

    Args:
        model: the module to average (deep-copied; the copy is ``self.module``).
        device: where the copy lives (``None`` or ``"cpu"``: deepbox computes on the CPU).
        avg_fn: ``avg_fn(averaged, current, num_averaged) -> new averaged`` applied per tensor.
        multi_avg_fn: ``multi_avg_fn(averaged_list, current_list, num_averaged)`` updating the lists in place.
            Give at most one of the two; with neither, the equal-weight average.
        use_buffers: average the buffers as well as the parameters (otherwise they are copied at each update).

    ``forward`` runs the averaged copy. ``n_averaged`` (an int64 buffer) counts the updates.
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel expects a Module to average, got {type(model).__name__}")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _make(xp.zeros((), xp.int64)))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _pairs(self, model: Module) -> tuple[list, list]:
        if self.use_buffers:
            mine = [*self.module.parameters(), *self.module.buffers()]
            theirs = [*model.parameters(), *model.buffers()]
        else:
            mine, theirs = list(self.module.parameters()), list(model.parameters())
        if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs)):
            raise ValueError(f"AveragedModel.update_parameters: the model's {len(theirs)} tensors do not match the "
                             f"averaged copy's {len(mine)} (names, shapes); expected the model that was copied")
        return mine, theirs

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current weights into the average (the first call copies them)."""
        mine, theirs = self._pairs(model)
        n = int(self.n_averaged._data)
        with no_grad():
            if n == 0:
                for a, c in zip(mine, theirs):
                    a._data[...] = c._data
            elif self.avg_fn is not None:
                for a, c in zip(mine, theirs):
                    new = self.avg_fn(a.detach(), c.detach(), self.n_averaged)
                    a._data[...] = new._data if isinstance(new, Tensor) else new
            elif self.multi_avg_fn is not None:
                # grouped by dtype, as PyTorch groups by device and dtype
                for dtype in dict.fromkeys(a._data.dtype for a in mine):
                    group = [(a, c) for a, c in zip(mine, theirs) if a._data.dtype == dtype]
                    self.multi_avg_fn([a for a, _ in group], [c for _, c in group], self.n_averaged)
            else:
                _lerp_(mine, theirs, 1.0 / (n + 1))
            if not self.use_buffers:
                for a, c in zip(self.module.buffers(), model.buffers(), strict=True):
                    a._data[...] = c._data
            self.n_averaged._data += 1


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running mean and variance of every batch norm in ``model`` from one pass over ``loader``.

    The statistics are reset and then averaged over the batches with equal weight (momentum ``None``
    during the pass, restored afterwards). A batch is a tensor or a list/tuple whose first element is
    the input. The model's train/eval mode is restored. A model without batch norm is left alone.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)
