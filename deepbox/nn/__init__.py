"""``deepbox.nn``: modules, parameters, initialisation and functional ops, as in ``torch.nn``."""
from deepbox.nn import functional, init, parallel, utils  # noqa: F401,E402
from deepbox.nn.modules import *  # noqa: F401,F403
from deepbox.nn.parallel import DataParallel  # noqa: F401
from deepbox.nn.parameter import Buffer, Parameter, UninitializedParameter  # noqa: F401
