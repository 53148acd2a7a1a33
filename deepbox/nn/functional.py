"""``deepbox.nn.functional``: stateless layers, activations and losses (``torch.nn.functional``)."""
from __future__ import annotations

from deepbox.ops.nn_fused import LinearFn


def linear(input, weight, bias=None):
    """``input @ weight.T + bias`` as one graph node.

    Shape: input ``(*, in)``, weight ``(out, in)``, bias ``(out,)``, output ``(*, out)``.
    """
    if bias is None:
        return LinearFn.apply(input, weight)
    return LinearFn.apply(input, weight, bias)


from deepbox.ops.attention import *  # noqa: F401,F403,E402  scaled_dot_product_attention
from deepbox.ops.conv import *  # noqa: F401,F403,E402  conv1d, conv2d, conv_transpose2d, unfold, fold
from deepbox.ops.pool import *  # noqa: F401,F403,E402  pooling, interpolate, pixel_shuffle
