"""``deepbox.optim``: optimisers and learning-rate schedules, as in ``torch.optim``."""
from __future__ import annotations

from deepbox.optim import lr_scheduler, swa_utils  # noqa: F401
from deepbox.optim.adadelta import Adadelta
from deepbox.optim.adagrad import Adagrad
from deepbox.optim.adam import Adam
from deepbox.optim.adamax import Adamax
from deepbox.optim.adamw import AdamW
from deepbox.optim.asgd import ASGD
from deepbox.optim.lbfgs import LBFGS
from deepbox.optim.nadam import NAdam
from deepbox.optim.optimizer import Optimizer, required
from deepbox.optim.radam import RAdam
from deepbox.optim.rmsprop import RMSprop
from deepbox.optim.rprop import Rprop
from deepbox.optim.sgd import SGD

__all__ = ["Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "LBFGS",
           "NAdam", "RAdam", "Adamax", "Rprop", "ASGD",
           "lr_scheduler", "swa_utils"]
