"""deepbox's benchmark suite: every workload in deepbox and PyTorch, side by side, in one run."""
