"""Per-layer density profiles: how many weights a layer keeps and how dense its activations are.

The built-in profile ``han2015`` is Han, Pool, Tran, Dally, "Learning both Weights and
Connections for Efficient Neural Networks", NIPS 2015, Tables 2-5 (pruning/data/han2015.yaml).
Users may write their own profile files in the same schema (see that file's header) and
load them with ``load_profile_file``.

Semantics (Han's tables): Act% is the density of a layer's OUTPUT activations, so a
layer's input density is the previous weighted layer's Act%, and the first layer's input
is dense (100%). All densities here are fractions in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from numbers import Real
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from pruning.magnitude import prunable_layers, prune_to_density, zero_to_density

_BUILTIN: dict[str, str] = {"han2015": "han2015.yaml"}

# Density fields a layer entry may carry: (percent spelling, fraction spelling). Han's file
# uses percentages as printed; a user may prefer fractions. Exactly one of each pair.
_WEIGHT_FIELDS = ("weights_pct", "weight_density")
_OUTPUT_FIELDS = ("act_pct", "output_density")
_INPUT_FIELDS = ("input_pct", "input_density")   # optional: default previous output
_FLOP_FIELDS = ("flop_pct", "flop_density")      # optional, informative only
_PRINTED_FIELDS = ("layer", "weights", "flop", "act_pct", "weights_pct", "flop_pct")


class ProfileError(ValueError):
    """A profile that does not exist, does not fit the model, or holds invalid values."""


@dataclass(frozen=True)
class LayerDensity:
    """Densities of one weighted layer, all fractions in [0, 1].

    weight_density: fraction of weights kept. input_density: fraction of non-zero input
    activations. output_density: fraction of non-zero output activations (Han's Act%).
    """
    layer: str
    weight_density: float
    input_density: float
    output_density: float


@dataclass(frozen=True)
class DensityProfile:
    """A named set of per-layer densities for one model, layers in network order."""
    name: str
    model: str
    source: str
    layers: tuple[LayerDensity, ...]

    def layer(self, name: str) -> LayerDensity:
        """The entry for layer ``name``; ProfileError listing the valid names if absent."""
        for entry in self.layers:
            if entry.layer == name:
                return entry
        valid = ", ".join(e.layer for e in self.layers)
        raise ProfileError(f"profile {self.name!r} ({self.model}) has no layer {name!r}; "
                           f"valid: {valid}")


def available_profiles() -> tuple[str, ...]:
    """Names accepted by ``load_profile``: ``("han2015",)``."""
    return tuple(_BUILTIN)


def _read_yaml(path: Path | str, text: str | None = None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text if text is not None else Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("networks"), dict):
        raise ProfileError(f"{path}: a profile file needs a top-level 'networks' mapping")
    return data


def _builtin_yaml(name: str) -> tuple[str, dict[str, Any]]:
    if name not in _BUILTIN:
        raise ProfileError(f"unknown profile {name!r}; valid: {', '.join(available_profiles())}")
    resource = resources.files("pruning") / "data" / _BUILTIN[name]
    label = f"pruning/data/{_BUILTIN[name]}"
    return label, _read_yaml(label, resource.read_text())


def _network(data: dict[str, Any], where: str, profile: str, model: str) -> dict[str, Any]:
    networks = data["networks"]
    if model not in networks:
        raise ProfileError(f"profile {profile!r} ({where}) has no entry for model {model!r}; "
                           f"valid: {', '.join(map(str, networks))}")
    network = networks[model]
    if not isinstance(network, dict) or not isinstance(network.get("layers"), list) \
            or not network["layers"]:
        raise ProfileError(f"{where}: model {model!r} needs a non-empty 'layers' list")
    return network


def _density(entry: dict[str, Any], fields: tuple[str, str], where: str,
             layer: str, required: bool) -> float | None:
    """Read one density given as a percentage or as a fraction; check it is in range."""
    pct_field, frac_field = fields
    present = [f for f in fields if f in entry]
    if len(present) == 2:
        raise ProfileError(f"{where}: layer {layer!r} gives both {pct_field!r} and "
                           f"{frac_field!r}; give one")
    if not present:
        if required:
            raise ProfileError(f"{where}: layer {layer!r} lacks field {pct_field!r} "
                               f"(or {frac_field!r})")
        return None
    field = present[0]
    value = entry[field]
    scale = 100.0 if field == pct_field else 1.0
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise ProfileError(f"{where}: layer {layer!r} field {field!r} = {value!r} "
                           f"is not a number")
    if not 0.0 <= float(value) <= scale:
        raise ProfileError(f"{where}: layer {layer!r} field {field!r} = {value!r} "
                           f"is outside [0, {scale:g}]")
    return float(value) / scale


def _parse_profile(data: dict[str, Any], where: str, profile: str, model: str) -> DensityProfile:
    network = _network(data, where, profile, model)
    layers: list[LayerDensity] = []
    seen: set[str] = set()
    previous_output = 1.0   # the first layer's input (the image) is dense
    for i, entry in enumerate(network["layers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("layer"), str):
            raise ProfileError(f"{where}: model {model!r} layer entry {i} needs a 'layer' name")
        name = entry["layer"]
        if name in seen:
            raise ProfileError(f"{where}: model {model!r} lists layer {name!r} twice")
        seen.add(name)
        # FLOP% is printed information, not used here, but a value outside its range
        # still means a broken file.
        _density(entry, _FLOP_FIELDS, where, name, required=False)
        weight = _density(entry, _WEIGHT_FIELDS, where, name, required=True)
        output = _density(entry, _OUTPUT_FIELDS, where, name, required=True)
        given_input = _density(entry, _INPUT_FIELDS, where, name, required=False)
        inp = previous_output if given_input is None else given_input
        layers.append(LayerDensity(name, weight, inp, output))
        previous_output = output
    source = network.get("source") or f"profile file {where}"
    return DensityProfile(name=profile, model=model, source=str(source), layers=tuple(layers))


def load_profile(name: str, model: str) -> DensityProfile:
    """Built-in profile ``name`` (see available_profiles) for zoo model ``model``.

    ProfileError if the profile is unknown or has no entry for the model (the message
    lists the valid names), or if a density in the file lies outside [0, 1] (the message
    names the file, layer and field).
    """
    where, data = _builtin_yaml(name)
    return _parse_profile(data, where, name, model)


def load_profile_file(path: str | Path, model: str) -> DensityProfile:
    """A user's profile file (same schema as pruning/data/han2015.yaml) for ``model``.

    Densities may be given as percentages (weights_pct, act_pct, input_pct) or fractions
    (weight_density, output_density, input_density). The profile is named by the file's
    top-level ``name`` or else its stem. Errors as in load_profile, naming ``path``.
    """
    data = _read_yaml(path)
    name = str(data.get("name") or Path(path).stem)
    return _parse_profile(data, str(path), name, model)


def han2015_table(model: str) -> list[dict]:
    """Han et al. 2015's printed rows for ``model`` (Tables 2-5), in table order.

    Each row: layer, weights, flop (printed strings such as "235K", "1.5B"), act_pct,
    weights_pct, flop_pct (numbers as printed). The last row is the printed totals row,
    with layer "total". Fresh dicts on every call. ProfileError for an unknown model.
    """
    where, data = _builtin_yaml("han2015")
    network = _network(data, where, "han2015", model)
    rows = [{k: entry[k] for k in _PRINTED_FIELDS} for entry in network["layers"]]
    total = network["total"]
    rows.append({"layer": "total", **{k: total[k] for k in _PRINTED_FIELDS if k != "layer"}})
    return rows


def apply_profile(model: nn.Module, profile: DensityProfile, *, reparametrize: bool = True
                  ) -> dict[str, float]:
    """Prune every prunable layer of ``model`` by magnitude to the profile's weight density.

    With ``reparametrize`` (the default) each layer gets a ``torch.nn.utils.prune`` mask
    (:func:`pruning.magnitude.prune_to_density`), so the model can be retrained; without, the
    zeros are written into fresh weight tensors (:func:`pruning.magnitude.zero_to_density`):
    the same kept weights, much cheaper, for models that only feed a workload.

    Returns {layer name: input activation density} in model order, for synthesising
    activations later. The profile's layer names must equal the model's prunable layer
    names (pruning.magnitude.prunable_layers); otherwise ProfileError naming the missing
    and extra layers is raised before any layer is pruned, so the model is left as it was.
    """
    layers = prunable_layers(model)
    wanted = {entry.layer for entry in profile.layers}
    missing = [name for name in layers if name not in wanted]
    extra = [entry.layer for entry in profile.layers if entry.layer not in layers]
    if missing or extra:
        raise ProfileError(
            f"profile {profile.name!r} ({profile.model}) does not match the model's layers: "
            f"not in profile: {missing or 'none'}; not in model: {extra or 'none'}")
    for name, module in layers.items():
        (prune_to_density if reparametrize else zero_to_density)(module, profile.layer(name).weight_density)
    return {name: profile.layer(name).input_density for name in layers}
