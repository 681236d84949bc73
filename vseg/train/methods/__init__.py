"""The pre-training methods: one module each, found here by name (``vseg pretrain <name>``, the demo, benchmarks).

A method module holds its config model, its data, its step, what may change when a run resumes and how to make
built-in data, in one class that follows :class:`vseg.train.trainer.Method`, exported as ``METHOD``. Adding a method
is adding a module here (with its model in :mod:`vseg.models` and its presets in ``vseg/configs/<name>/``): nothing
else names it. Modules are imported only when asked for, so that ``vseg --help`` does not load torch.
"""

from __future__ import annotations

import importlib
import pkgutil

from vseg.errors import ConfigError


def method_names() -> list[str]:
    """The names of the methods, sorted (the modules of this package), without importing them."""
    return sorted(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))


def load_method(name: str) -> type:
    """The method class named ``name``; ConfigError listing the methods if there is none."""
    if name not in method_names():
        raise ConfigError(f"no pre-training method {name!r} (methods: {', '.join(method_names())})")
    return importlib.import_module(f"{__name__}.{name}").METHOD
