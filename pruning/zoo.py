"""The four networks of Han et al. 2015, built layer for layer as the paper used them.

Han, Pool, Tran, Dally. "Learning both Weights and Connections for Efficient Neural
Networks", NIPS 2015, Tables 2-5. Every model is an ``nn.Sequential`` of named modules,
so ``model.named_modules()`` yields Han's layer names (``fc1``, ``conv2``, ``conv5_3``,
``fc6`` ...) and every operation (flatten, ReLU, pooling, LRN, dropout) is a module the
simulator can see; there are no functional calls hidden in a ``forward``.

Contract
--------
``build_model(name, seed)`` returns a freshly initialised model (train mode, CPU, fp32)
whose weights depend only on ``seed``; the global torch RNG state is left untouched.
Per-layer weight counts (weight tensors only, no biases) equal those implied by Han's
tables exactly, e.g. AlexNet conv3 384*256*3*3 = 884,736; totals: LeNet-300-100 266,200,
LeNet-5 430,500, AlexNet 60,954,656, VGG-16 138,344,128.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

MODEL_NAMES: tuple[str, ...] = ("lenet-300-100", "lenet-5", "alexnet", "vgg-16")

_INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "lenet-300-100": (1, 28, 28),
    "lenet-5": (1, 28, 28),
    # Caffe's AlexNet crops 227x227 so that conv1 (11x11, stride 4) gives 55x55 (Han Table 4).
    "alexnet": (3, 227, 227),
    "vgg-16": (3, 224, 224),
}

_NUM_CLASSES: dict[str, int] = {
    "lenet-300-100": 10,
    "lenet-5": 10,
    "alexnet": 1000,
    "vgg-16": 1000,
}


class UnknownModelError(ValueError):
    """Raised for a model name not in MODEL_NAMES."""


def _check_name(name: str) -> None:
    if name not in MODEL_NAMES:
        raise UnknownModelError(
            f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)}"
        )


def input_shape(name: str) -> tuple[int, ...]:
    """Per-sample input shape (C, H, W), no batch dimension. Unknown name -> UnknownModelError."""
    _check_name(name)
    return _INPUT_SHAPES[name]


def num_classes(name: str) -> int:
    """Number of output classes (10 for the MNIST LeNets, 1000 for the ImageNet nets)."""
    _check_name(name)
    return _NUM_CLASSES[name]


def _lenet_300_100() -> nn.Sequential:
    # Han Table 2: fc1 784x300 (235K), fc2 300x100 (30K), fc3 100x10 (1K).
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(784, 300)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(300, 100)),
        ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(100, 10)),
    ]))


def _lenet_5() -> nn.Sequential:
    # Caffe's examples/mnist/lenet.prototxt, which Han used (Table 3): no non-linearity
    # after the convolutions, a single ReLU after ip1. 28 -conv5-> 24 -pool-> 12 -conv5-> 8
    # -pool-> 4, so fc1 sees 50*4*4 = 800 features.
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 20, kernel_size=5)),
        ("pool1", nn.MaxPool2d(kernel_size=2, stride=2)),
        ("conv2", nn.Conv2d(20, 50, kernel_size=5)),
        ("pool2", nn.MaxPool2d(kernel_size=2, stride=2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(800, 500)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(500, 10)),
    ]))


def _lrn() -> nn.LocalResponseNorm:
    # Caffe AlexNet norm1/norm2: local_size 5, alpha 1e-4, beta 0.75, k 1.
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)


def _alexnet() -> nn.Sequential:
    # Caffe's bvlc_alexnet (Han Table 4), including the two-GPU grouping of conv2/4/5,
    # which is why conv2 has 256*48*5*5 = 307,200 weights rather than 614,400.
    # Spatial sizes: 227 -> 55 -> pool 27 -> 27 -> pool 13 -> 13 -> 13 -> 13 -> pool 6.
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 96, kernel_size=11, stride=4)),
        ("relu1", nn.ReLU()),
        ("norm1", _lrn()),
        ("pool1", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)),
        ("relu2", nn.ReLU()),
        ("norm2", _lrn()),
        ("pool2", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)),
        ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2)),
        ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2)),
        ("relu5", nn.ReLU()),
        ("pool5", nn.MaxPool2d(kernel_size=3, stride=2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(256 * 6 * 6, 4096)),
        ("relu6", nn.ReLU()),
        ("drop6", nn.Dropout(p=0.5)),
        ("fc2", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU()),
        ("drop7", nn.Dropout(p=0.5)),
        ("fc3", nn.Linear(4096, 1000)),
    ]))


# VGG-16 (configuration D of Simonyan & Zisserman), Han Table 5: (block, output channels, convs).
_VGG16_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (1, 64, 2), (2, 128, 2), (3, 256, 3), (4, 512, 3), (5, 512, 3),
)


def _vgg16() -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    in_ch = 3
    for block, out_ch, n_convs in _VGG16_BLOCKS:
        for i in range(1, n_convs + 1):
            layers.append((f"conv{block}_{i}", nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)))
            layers.append((f"relu{block}_{i}", nn.ReLU()))
            in_ch = out_ch
        layers.append((f"pool{block}", nn.MaxPool2d(kernel_size=2, stride=2)))
    # 224 halved five times -> 7x7x512 = 25,088 features into fc6.
    layers += [
        ("flatten", nn.Flatten()),
        ("fc6", nn.Linear(512 * 7 * 7, 4096)),
        ("relu6", nn.ReLU()),
        ("drop6", nn.Dropout(p=0.5)),
        ("fc7", nn.Linear(4096, 4096)),
        ("relu7", nn.ReLU()),
        ("drop7", nn.Dropout(p=0.5)),
        ("fc8", nn.Linear(4096, 1000)),
    ]
    return nn.Sequential(OrderedDict(layers))


_BUILDERS: dict[str, Callable[[], nn.Sequential]] = {
    "lenet-300-100": _lenet_300_100,
    "lenet-5": _lenet_5,
    "alexnet": _alexnet,
    "vgg-16": _vgg16,
}


def _init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """He/Kaiming normal weights (fan_in) and zero biases for every conv/fc layer, with the
    ReLU gain √2 only where a ReLU follows the layer and gain 1 elsewhere (LeNet-5's convs,
    which Caffe follows by pooling only, and every classifier layer).

    Why: He et al. 2015 keep the activation variance constant through ReLU layers; a layer
    that no ReLU follows halves no variance, so √2 would double it at every such layer. With
    √2 on LeNet-5's two convs, SGD at Caffe's learning rate 0.01 diverges on MNIST; with gain 1
    it trains (BENCHMARKS.md). Zero biases are the usual Caffe/torchvision choice. Layers are
    visited in model order with one generator, so the weights depend only on the seed.
    """
    children = list(model.children())
    for index, module in enumerate(children):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            followed_by_relu = index + 1 < len(children) and isinstance(children[index + 1], nn.ReLU)
            # fan_in of a grouped conv is (in/groups)*kh*kw, which torch derives from the
            # weight's shape, so grouped AlexNet layers get the right scale too.
            nn.init.kaiming_normal_(module.weight, mode="fan_in",
                                    nonlinearity="relu" if followed_by_relu else "linear",
                                    generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif any(True for _ in module.parameters(recurse=True)):
            # Guard: a parameterised module we do not initialise would keep the
            # uninitialised memory left by to_empty() below.
            raise TypeError(f"no initialiser for {type(module).__name__}")


def build_model(name: str, seed: int = 0) -> nn.Module:
    """Build network ``name`` (one of MODEL_NAMES) with weights drawn from ``seed``.

    Same name and seed -> bit-identical weights; the global RNG state is not used or
    changed (a private torch.Generator draws the weights). Unknown name -> UnknownModelError.
    """
    _check_name(name)
    # Build on the meta device and allocate once: skips torch's default init, which for
    # VGG-16 (138M weights) would cost as much as the initialisation we actually want.
    with torch.device("meta"):
        model = _BUILDERS[name]()
    # Allocate with torch.empty rather than Module.to_empty: empty_like of a meta tensor runs
    # torch's Python reference, whose first call imports sympy (~0.7 s of CPU per process).
    for module in model.modules():
        for key, param in list(module.named_parameters(recurse=False)):
            module.register_parameter(key, nn.Parameter(torch.empty(param.shape, dtype=param.dtype),
                                                        requires_grad=param.requires_grad))
        if any(True for _ in module.buffers(recurse=False)):
            raise TypeError(f"{type(module).__name__} has buffers; allocate them here too")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    with torch.no_grad():
        _init_weights(model, generator)
    return model
