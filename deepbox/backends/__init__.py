"""``deepbox.backends``: PyTorch's backend switches, answered for the CPU."""
from types import SimpleNamespace

mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
cudnn = SimpleNamespace(enabled=False, benchmark=False, deterministic=True, is_available=lambda: False)
