"""Training that respects pruning masks (Han et al. 2015, Section 3).

Han's pipeline trains a dense network, prunes it, and retrains the survivors. Retraining
must never bring a pruned connection back, so every optimizer step here is followed by
re-applying each ``torch.nn.utils.prune`` mask to its ``weight_orig`` and zeroing the
momentum buffer at the masked positions. Masked weights therefore stay exactly zero and
receive no update at all: not from the gradient (autograd already gives them zero), not
from weight decay, not from momentum, and a later un-pruning cannot resurrect stale
momentum either.

Regularisation (Han Section 3.1, Fig. 5): L2 is applied as weight decay
(``grad += λ·w``), L1 as ``grad += λ·sign(w)`` (the gradient of the penalty λ·Σ|w|).
Both act only on the weights of prunable (Linear/Conv2d) layers; biases only when
``TrainConfig.regularize_bias`` is set.

Determinism: ``train(..., seed)`` draws the data order from a private
``torch.Generator(seed)`` and seeds the global RNG (dropout) with ``seed`` inside a
forked RNG state, so the same model, data, config and seed give bit-identical weights (with
the same number of torch threads, which fixes the order of the float sums) and the caller's
global RNG state is left as it was.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from pruning.augment import random_shift
from pruning.magnitude import prunable_layers

_REGULARIZATIONS = ("l1", "l2", "none")
_SCHEDULES = ("constant", "step", "cosine")
_TRAINABLE = ("all", "conv", "fc")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one SGD-with-momentum training phase.

    lr_schedule is evaluated once per epoch e (0-based) of E: ``constant`` keeps lr;
    ``step`` divides it by 10 from e/E >= 0.5 and again from e/E >= 0.75; ``cosine`` uses
    lr·(1 + cos(π·e/E))/2. trainable ``conv`` freezes every Linear layer, ``fc`` every
    Conv2d layer (Han Section 3.3: conv and FC layers are retrained separately); frozen
    layers are bit-identical after training. regularize_bias extends the L1/L2 penalty to
    the biases of prunable layers (off by default, as in Caffe's usual setting).
    augment_shift > 0 moves every training image by a random whole-pixel offset of up to
    that many pixels in each direction (:func:`pruning.augment.random_shift`, drawn from the
    run's seeded generator); 0, the default, is Han's recipe without augmentation.
    """
    epochs: int = 10
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 64
    regularization: str = "l2"
    reg_strength: float = 5e-4
    lr_schedule: str = "cosine"
    trainable: str = "all"
    regularize_bias: bool = False
    augment_shift: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise ValueError(f"epochs must be an int >= 0, got {self.epochs!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if isinstance(self.augment_shift, bool) or not isinstance(self.augment_shift, int) \
                or self.augment_shift < 0:
            raise ValueError(f"augment_shift must be an int >= 0 (pixels), got {self.augment_shift!r}")
        for field, value in (("lr", self.lr), ("momentum", self.momentum),
                             ("reg_strength", self.reg_strength)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
        for field, value, valid in (("regularization", self.regularization, _REGULARIZATIONS),
                                    ("lr_schedule", self.lr_schedule, _SCHEDULES),
                                    ("trainable", self.trainable, _TRAINABLE)):
            if value not in valid:
                raise ValueError(f"{field} must be one of {', '.join(valid)}; got {value!r}")


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate of 0-based ``epoch`` under ``config.lr_schedule`` (see TrainConfig)."""
    done = epoch / max(config.epochs, 1)
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "step":
        return config.lr * 0.1 ** sum(done >= m for m in (0.5, 0.75))
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * done))


def _weight_param(module: nn.Module) -> nn.Parameter:
    # A pruned layer trains weight_orig; weight is then a derived (masked) tensor.
    return module.weight_orig if hasattr(module, "weight_orig") else module.weight


def _is_trainable(module: nn.Module, trainable: str) -> bool:
    if trainable == "conv":
        return not isinstance(module, nn.Linear)
    if trainable == "fc":
        return not isinstance(module, nn.Conv2d)
    return True


def refresh_pruned_weights(model: nn.Module) -> None:
    """Recompute ``module.weight = weight_orig * weight_mask`` for every pruned module.

    torch only refreshes that attribute in a forward pre-hook, so after an in-place edit
    of weight_orig (an optimizer step, a re-mask) it would be stale until the next forward.
    """
    with torch.no_grad():
        for module in model.modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    hook(module, None)


def _batches(dataset: Dataset, batch_size: int, generator: torch.Generator,
             shuffle: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) batches; a TensorDataset is sliced directly (much faster than
    the per-sample collation of a DataLoader), anything else goes through a DataLoader."""
    n = len(dataset)
    if isinstance(dataset, TensorDataset):
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        x, y = dataset.tensors[0], dataset.tensors[1]
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                        generator=generator if shuffle else None)
    for x, y in loader:
        yield x, y


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def evaluate(model: nn.Module, dataset: Dataset | None,
             batch_size: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of ``model`` on ``dataset``, in eval mode with
    no gradient; the model's train/eval mode is restored afterwards. An empty or missing
    dataset gives (nan, nan)."""
    if dataset is None or len(dataset) == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    device = _device(model)
    total_loss, correct, count = 0.0, 0, 0
    try:
        with torch.no_grad():
            for x, y in _batches(dataset, batch_size, torch.Generator(), shuffle=False):
                x, y = x.to(device), y.to(device)
                out = model(x)
                total_loss += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(dim=1) == y).sum())
                count += int(y.numel())
    finally:
        model.train(was_training)
    return total_loss / count, correct / count


def _masked_params(model: nn.Module, trainable: str) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """(weight_orig, weight_mask) of every pruned module that is being trained."""
    pairs = []
    for module in model.modules():
        if _is_trainable(module, trainable) and hasattr(module, "weight_orig") \
                and hasattr(module, "weight_mask"):
            pairs.append((module.weight_orig, module.weight_mask))
    return pairs


def _param_groups(model: nn.Module, config: TrainConfig
                  ) -> tuple[list[nn.Parameter], list[nn.Parameter], list[nn.Parameter]]:
    """Split the trainable parameters into (regularised, unregularised, frozen).

    Regularised: weights of prunable layers (and their biases if regularize_bias). Frozen:
    every parameter of a layer excluded by ``config.trainable``.
    """
    regularised: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    frozen: list[nn.Parameter] = []
    assigned: set[int] = set()
    for module in prunable_layers(model).values():
        own = list(module.parameters(recurse=False))
        assigned.update(id(p) for p in own)
        if not _is_trainable(module, config.trainable):
            frozen.extend(p for p in own if p.requires_grad)
            continue
        penalised = {id(_weight_param(module))}
        if config.regularize_bias and module.bias is not None:
            penalised.add(id(module.bias))
        for p in own:
            if p.requires_grad:
                (regularised if id(p) in penalised else plain).append(p)
    # Parameters outside Linear/Conv2d (none in the zoo) train without a penalty.
    plain += [p for p in model.parameters() if id(p) not in assigned and p.requires_grad]
    return regularised, plain, frozen


def _apply_masks(pairs: list[tuple[nn.Parameter, torch.Tensor]],
                 optimizer: torch.optim.Optimizer | None) -> None:
    """Zero masked weights and their momentum: the invariant that keeps pruned
    connections pruned (weight_orig·mask, buffer·mask)."""
    with torch.no_grad():
        for param, mask in pairs:
            param.mul_(mask)
            if optimizer is not None:
                buf = optimizer.state.get(param, {}).get("momentum_buffer")
                if buf is not None:
                    buf.mul_(mask)


class StepHooks:
    """Callbacks a pruning method runs inside ``train``'s optimiser loop (no-ops here).

    ``before_step(model)`` runs after the backward pass (and the L1 term), before
    ``optimizer.step()``: gradients are complete and may be edited. ``after_step(model)``
    runs after the step and the re-masking, so it sees the weights as they will be used.
    """

    def before_step(self, model: nn.Module) -> None:
        """Called with complete gradients, before the optimiser step."""

    def after_step(self, model: nn.Module) -> None:
        """Called after the optimiser step and the re-masking."""


def train(model: nn.Module, data, config: TrainConfig, seed: int = 0,
          progress: bool = True, desc: str = "train",
          hooks: StepHooks | None = None) -> list[dict]:
    """Train ``model`` in place with SGD + momentum on ``data.train``; validate on ``data.val``.

    ``data`` is any object with ``.train`` and ``.val`` datasets yielding (image, int64
    label); ``.val`` may be None. Returns one dict per epoch: epoch (1-based), loss (mean
    training cross-entropy, without the regulariser), train_acc (accuracy on the training
    batches as seen during the epoch, train mode), val_loss, val_acc (eval mode), lr.
    ``config.epochs == 0`` returns [] and leaves the model untouched.

    Pruned layers (weight_orig/weight_mask) keep their masked weights exactly zero with a
    zero momentum buffer throughout (see module docstring). Layers frozen by
    ``config.trainable`` are not touched at all. Shows one tqdm bar per epoch on stderr
    (loss, accuracy in the postfix) unless ``progress`` is False. The model's train/eval
    mode and requires_grad flags are restored afterwards. ``hooks`` (a :class:`StepHooks`)
    runs around every optimiser step; any RNG it uses is its own business (a seeded
    generator keeps the run repeatable).
    """
    if config.epochs == 0:
        return []
    regularised, plain, frozen = _param_groups(model, config)
    masked = _masked_params(model, config.trainable)
    device = _device(model)
    decay = config.reg_strength if config.regularization == "l2" else 0.0
    groups = [g for g in ({"params": regularised, "weight_decay": decay},
                          {"params": plain, "weight_decay": 0.0}) if g["params"]]
    if not groups:
        raise ValueError(f"trainable={config.trainable!r} leaves no parameter to train")
    optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    l1 = config.reg_strength if config.regularization == "l1" else 0.0

    was_training = model.training
    flags = [(p, p.requires_grad) for p in frozen]
    history: list[dict] = []
    generator = torch.Generator().manual_seed(int(seed))
    n_batches = math.ceil(len(data.train) / config.batch_size)
    # fork_rng: seed dropout deterministically without disturbing the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            for p in frozen:
                p.requires_grad_(False)
            # Masked entries of weight_orig still hold their pre-pruning values (torch's
            # prune keeps them); zero them first so L2 decay and momentum start clean.
            _apply_masks(masked, None)
            for epoch in range(config.epochs):
                lr = learning_rate(config, epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                model.train()
                total_loss, correct, count = 0.0, 0, 0
                bar = tqdm(_batches(data.train, config.batch_size, generator, shuffle=True),
                           total=n_batches, desc=f"{desc} {epoch + 1}/{config.epochs}",
                           disable=not progress, file=sys.stderr)
                for x, y in bar:
                    x = random_shift(x, config.augment_shift, generator)
                    x, y = x.to(device), y.to(device)
                    optimizer.zero_grad(set_to_none=True)
                    out = model(x)
                    loss = F.cross_entropy(out, y)
                    loss.backward()
                    if l1:
                        # d/dw λ·Σ|w| = λ·sign(w); sign(0) = 0 keeps masked entries at rest.
                        for p in regularised:
                            if p.grad is not None:
                                p.grad.add_(torch.sign(p.detach()), alpha=l1)
                    if hooks is not None:
                        hooks.before_step(model)
                    optimizer.step()
                    _apply_masks(masked, optimizer)
                    if hooks is not None:
                        hooks.after_step(model)
                    total_loss += float(loss.detach()) * int(y.numel())
                    correct += int((out.argmax(dim=1) == y).sum())
                    count += int(y.numel())
                    bar.set_postfix(loss=f"{total_loss / count:.4f}",
                                    acc=f"{correct / count:.4f}", refresh=False)
                val_loss, val_acc = evaluate(model, getattr(data, "val", None))
                history.append({"epoch": epoch + 1, "loss": total_loss / max(count, 1),
                                "train_acc": correct / max(count, 1), "val_loss": val_loss,
                                "val_acc": val_acc, "lr": lr})
                bar.set_postfix(loss=f"{history[-1]['loss']:.4f}",
                                acc=f"{history[-1]['train_acc']:.4f}",
                                val_acc=f"{val_acc:.4f}", lr=f"{lr:.3g}")
                bar.close()
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
            model.train(was_training)
            refresh_pruned_weights(model)
    return history
