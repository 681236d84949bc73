"""The training methods: one module each, found here by name (``vseg pretrain <name>``, ``vseg finetune``, the demo,
benchmarks).

A method module holds its config model, its data, its step, what may change when a run resumes and how to make
built-in data, in one class that follows :class:`vseg.train.trainer.Method`, exported as ``METHOD``. Adding a method
is adding a module here (with its model in :mod:`vseg.models` and its presets in ``vseg/configs/<name>/``): nothing
else names it. Modules are imported only when asked for, so that ``vseg --help`` does not load torch.

:data:`FINETUNE` is the one module that is not a pre-training method: supervised fine-tuning trains on labels and
ends with a test, so it is its own command (``vseg finetune``) and ``vseg pretrain`` does not list it.
"""

from __future__ import annotations

import importlib
import pkgutil

from vseg.errors import ConfigError

FINETUNE = "finetune"


def method_names() -> list[str]:
    """The names of the pre-training methods, sorted (the modules of this package but FINETUNE), without importing
    them."""
    names = (module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))
    return sorted(name for name in names if name != FINETUNE)


def load_method(name: str) -> type:
    """The method class named ``name`` (a pre-training method or FINETUNE); ConfigError listing the pre-training
    methods if there is none."""
    if name != FINETUNE and name not in method_names():
        raise ConfigError(f"no pre-training method {name!r} (methods: {', '.join(method_names())})")
    return importlib.import_module(f"{__name__}.{name}").METHOD
