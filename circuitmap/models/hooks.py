"""Forward hooks on real modules, registered for one `with` block and always removed after it."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _first_input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


class Hooks:
    """A set of hooks, removed on exit. Callbacks see the module's main input tensor (the first
    positional argument or `hidden_states`) and, for forward hooks, its output; returning a value
    replaces the input (pre hooks) or the output (forward hooks)."""

    def __init__(self) -> None:
        self._handles: list = []

    def pre(self, module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> None:
        def hook(_module, args, kwargs):
            new = fn(_first_input(args, kwargs))
            if new is None:
                return None
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def post(self, module: nn.Module, fn: Callable[[torch.Tensor, object], object]) -> None:
        def hook(_module, args, kwargs, output):
            return fn(_first_input(args, kwargs), output)

        self._handles.append(module.register_forward_hook(hook, with_kwargs=True))

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
