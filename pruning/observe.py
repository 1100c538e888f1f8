"""Watching what every Linear/Conv2d layer receives during an inference pass.

``observe_inputs(model, inputs, callback)`` runs ``inputs`` through ``model`` in batches, in
eval mode and without gradients, and calls ``callback(name, module, x)`` with each prunable
layer's input batch (a forward pre-hook). The hooks are removed and the train/eval mode
restored afterwards, also on error. Used for relief's activation statistics and for the
activation scales of fixed-point quantisation.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from pruning.magnitude import prunable_layers

__all__ = ["observe_inputs"]


def observe_inputs(model: nn.Module, inputs: torch.Tensor,
                   callback: Callable[[str, nn.Module, torch.Tensor], None], batch_size: int = 500) -> None:
    """Call ``callback(name, module, input batch)`` for every prunable layer on every batch."""
    handles = [module.register_forward_pre_hook(
        lambda hooked, args, name=name: callback(name, hooked, args[0].detach()))
        for name, module in prunable_layers(model).items()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(inputs), batch_size):
                model(inputs[start:start + batch_size])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
