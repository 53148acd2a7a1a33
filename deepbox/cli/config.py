"""The ``deepbox train`` configuration: defaults, a YAML/JSON file, flags, and their checks.

Values come from three places, later ones winning: the defaults below, a configuration file
(``--config run.yaml``), and the flags given on the command line. A file holds the same names
as the flags, with ``-`` or ``_`` (``batch-size: 64`` or ``batch_size: 64``)::

    model: lenet5
    epochs: 5
    lr: 0.002
    augment: true

Every value is checked before anything is trained or written; a bad one raises ``ConfigError``
naming the key, the value, where it came from and what is expected.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, fields

__all__ = ["TrainConfig", "ConfigError", "load_config_file", "OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
MAX_LR = 10.0
SCHEDULERS = ("cosine", "none")


class ConfigError(ValueError):
    """A configuration value or file that cannot be used."""


@dataclass
class TrainConfig:
    """What ``deepbox train`` does. ``None`` means "the model's/dataset's default"."""

    model: str = "convnet"
    data: str = "fashion-mnist-small"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"
    augment: bool = False
    seed: int = 0
    workers: int = 0
    val_split: float = 0.0
    limit_train: int | None = None
    limit_test: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def check(self, where: dict[str, str] | None = None) -> TrainConfig:
        """Check every value; ``where`` says where each key came from, for the message."""
        where = where or {}

        def bad(key: str, expected: str):
            value = getattr(self, key)
            src = where.get(key, "default")
            raise ConfigError(f"{key.replace('_', '-')} = {value!r} (from {src}) is not usable: expected {expected}")

        def integer(key, minimum, optional=False):
            v = getattr(self, key)
            if v is None and optional:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                bad(key, f"an integer >= {minimum}")

        def number(key, minimum, strict, maximum, why=""):
            # finite and within sane bounds: an infinite or huge rate only shows up later as a NaN loss
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < minimum or \
                    (strict and v == minimum) or v > maximum or (key == "momentum" and v == maximum):
                top = f"< {maximum:g}" if key == "momentum" else f"<= {maximum:g}"
                bad(key, f"a number {'>' if strict else '>='} {minimum:g} and {top}{why}")
            setattr(self, key, float(v))

        for key in ("model", "data"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                bad(key, "a non-empty name")
        integer("epochs", 1)
        integer("batch_size", 1)
        integer("seed", 0)
        integer("workers", 0)
        integer("limit_train", 1, optional=True)
        integer("limit_test", 1, optional=True)
        number("lr", 0.0, strict=True, maximum=MAX_LR, why=" (larger rates diverge with every optimiser here)")
        number("weight_decay", 0.0, strict=False, maximum=1.0)
        number("momentum", 0.0, strict=False, maximum=1.0, why=" (a momentum of 1 or more never forgets a step)")
        number("val_split", 0.0, strict=False, maximum=1.0)
        if self.val_split >= 1.0:
            bad("val_split", "a fraction in [0, 1)")
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in OPTIMIZERS:
            bad("optimizer", f"one of {', '.join(OPTIMIZERS)}")
        self.optimizer = self.optimizer.lower()
        if not isinstance(self.scheduler, str) or self.scheduler.lower() not in SCHEDULERS:
            bad("scheduler", f"one of {', '.join(SCHEDULERS)}")
        self.scheduler = self.scheduler.lower()
        if not isinstance(self.augment, bool):
            bad("augment", "true or false")
        return self


def _yaml_loader(yaml):
    """PyYAML's safe loader, also reading ``1e-3`` as a float: YAML 1.1 wants ``1.0e-3``, people write ``1e-3``."""
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"))
    return Loader


def load_config_file(path: str) -> dict:
    """The key/value pairs of a YAML (``.yaml``/``.yml``) or JSON (``.json``) file, keys with ``_``."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file {path}: no such file; expected a .yaml, .yml or .json file")
    ext = os.path.splitext(path)[1].lower()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path}: cannot be read ({e}); expected a UTF-8 text file") from None
    if ext == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path}: not valid JSON ({e})") from None
    elif ext in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"config file {path}: reading YAML needs PyYAML (pip install pyyaml); "
                              "or write the configuration as JSON") from None
        try:
            doc = yaml.load(text, Loader=_yaml_loader(yaml))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError(f"config file {path}: not valid YAML{at} ({problem})") from None
    else:
        raise ConfigError(f"config file {path}: unknown extension {ext or '(none)'!r}; expected .yaml, .yml or .json")
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path}: holds a {type(doc).__name__}; expected a mapping of option names to "
                          "values (for example 'epochs: 5')")
    known = TrainConfig.keys()
    out = {}
    for k, v in doc.items():
        key = str(k).replace("-", "_")
        if key not in known:
            raise ConfigError(f"config file {path}: unknown option {k!r}; expected some of "
                              f"{', '.join(x.replace('_', '-') for x in known)}")
        out[key] = v
    return out
