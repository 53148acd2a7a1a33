"""deepbox runs on the CPU: ``deepbox.cuda.is_available()`` is False so device-picking code takes the CPU path."""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    pass


def manual_seed_all(seed: int) -> None:
    pass


def synchronize(device=None) -> None:
    pass


def empty_cache() -> None:
    pass
