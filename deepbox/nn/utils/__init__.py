"""Utilities for nn: gradient clipping, parameter vectors, rnn packing."""
