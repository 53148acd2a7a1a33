"""``deepbox.models``: the model zoo, registered by name (see ``registry``)."""
from deepbox.models.generative import *  # noqa: F401,F403
from deepbox.models.registry import get_model, list_models, model_info, register_model  # noqa: F401
from deepbox.models.sequence import *  # noqa: F401,F403
from deepbox.models.vision import *  # noqa: F401,F403
