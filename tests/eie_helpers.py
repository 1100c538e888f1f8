"""Small EIE descriptions and layers shared by tests/test_eie.py and tests/test_golden.py."""

import dataclasses

import numpy as np

from hwmodels.hardware import Accelerator, Precision, load_hardware
from sim.workload import Layer


def eie_hw(pes: int = 4, depth: int = 8, index_bits: int = 4, code_bits: int = 4,
           precision: Precision | None = None) -> Accelerator:
    """The eie-64pe preset with ``pes`` PEs (one bank per PE, two for the pointers), validated."""
    base = load_hardware("eie-64pe")
    array = dataclasses.replace(base.mac_array, rows=1, cols=pes,
                                eie=dataclasses.replace(base.mac_array.eie, fifo_depth=depth, code_bits=code_bits),
                                precision=precision or base.mac_array.precision)
    buffers = tuple(dataclasses.replace(b, banks=pes * (2 if b.name == "pointers" else 1)) for b in base.buffers)
    fmt = dataclasses.replace(base.weight_format, index_bits_linear=index_bits, index_bits_conv=index_bits)
    return base.with_changes(name=f"test-eie-{pes}pe", mac_array=array, buffers=buffers, weight_format=fmt)


def linear_layer(weight: np.ndarray, sample: np.ndarray, name: str = "fc") -> Layer:
    """A Linear layer (out × in ``weight``) on one input vector ``sample``, built directly."""
    weight = np.asarray(weight, dtype=np.float32)
    sample = np.asarray(sample, dtype=np.float32)
    out_features, in_features = weight.shape
    return Layer(name=name, kind="linear", input_shape=(in_features,), output_shape=(out_features,),
                 input_density=float(np.count_nonzero(sample)) / sample.size, output_density=1.0,
                 in_channels=in_features, out_channels=out_features, weight=weight, mask=weight != 0,
                 input_sample=sample)
