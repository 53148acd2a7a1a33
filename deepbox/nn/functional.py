"""Functional ops of deepbox.nn (filled by the nn toolkit)."""
