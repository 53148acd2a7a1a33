"""All layers of ``deepbox.nn``, one file per family."""
from deepbox.nn.modules.activation import *  # noqa: F401,F403
from deepbox.nn.modules.attention import *  # noqa: F401,F403
from deepbox.nn.modules.container import *  # noqa: F401,F403
from deepbox.nn.modules.conv import *  # noqa: F401,F403
from deepbox.nn.modules.dropout import *  # noqa: F401,F403
from deepbox.nn.modules.flatten import *  # noqa: F401,F403
from deepbox.nn.modules.linear import *  # noqa: F401,F403
from deepbox.nn.modules.loss import *  # noqa: F401,F403
from deepbox.nn.modules.module import *  # noqa: F401,F403
from deepbox.nn.modules.normalization import *  # noqa: F401,F403
from deepbox.nn.modules.padding import *  # noqa: F401,F403
from deepbox.nn.modules.pooling import *  # noqa: F401,F403
from deepbox.nn.modules.positional import *  # noqa: F401,F403
from deepbox.nn.modules.rnn import *  # noqa: F401,F403
from deepbox.nn.modules.sparse import *  # noqa: F401,F403
from deepbox.nn.modules.transformer import *  # noqa: F401,F403
from deepbox.nn.modules.upsampling import *  # noqa: F401,F403
