"""Hardware descriptions: presets load, bad files are rejected naming the field."""

import pytest
import yaml

from hwmodels.hardware import HardwareError, available_presets, load_hardware


def _write(tmp_path, data):
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def han45nm_dict():
    from importlib import resources

    return yaml.safe_load(resources.files("hwmodels").joinpath("presets", "han45nm.yaml").read_text())


def test_han45nm_preset_is_hans_argument():
    hw = load_hardware("han45nm")
    assert "han45nm" in available_presets()
    assert hw.mac_array.precision.dtype == "fp" and hw.mac_array.precision.bits == 32
    assert hw.mac_array.zero_weights == "skip" and hw.mac_array.zero_activations == "skip"
    assert hw.dram.interface == "lpddr2"
    # one access of one 8 KB bank: Han's 5 pJ per 32-bit SRAM access
    assert hw.buffer_for("weights").bank_bytes == 8192


@pytest.mark.parametrize("path, value, field, message", [
    (("mac_array", "cols"), -4, "mac_array.cols", "greater than 0"),
    (("buffers", 0, "capacity_bytes"), 0, "buffers.0.capacity_bytes", "greater than 0"),
    (("mac_array", "zero_weights"), "sometimes", "mac_array.zero_weights", "execute"),
    (("mac_array", "precision", "dtype"), "posit", "mac_array.precision.dtype", "'int' or 'fp'"),
    (("mac_array", "bogus"), 1, "mac_array.bogus", "unknown key"),
])
def test_bad_fields_are_named(tmp_path, han45nm_dict, path, value, field, message):
    node = han45nm_dict
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(HardwareError) as error:
        load_hardware(_write(tmp_path, han45nm_dict))
    assert f"field '{field}'" in str(error.value) and message in str(error.value)
    assert str(tmp_path / "hw.yaml") in str(error.value)


def test_missing_field_and_inconsistent_description(tmp_path, han45nm_dict):
    del han45nm_dict["dram"]
    with pytest.raises(HardwareError, match="field 'dram': required field is missing"):
        load_hardware(_write(tmp_path, han45nm_dict))


def test_skipping_zero_weights_needs_a_compressed_format(tmp_path, han45nm_dict):
    han45nm_dict["weight_format"] = {"kind": "dense"}
    with pytest.raises(HardwareError, match="compressed format"):
        load_hardware(_write(tmp_path, han45nm_dict))


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(HardwareError, match="unknown hardware 'tpu9'.*han45nm"):
        load_hardware("tpu9")


# ---------------------------------------------------------------------------------- systolic arrays


@pytest.fixture
def systolic_dict():
    from importlib import resources

    return yaml.safe_load(resources.files("hwmodels").joinpath("presets", "systolic-ws-32x32.yaml").read_text())


@pytest.mark.parametrize("path, value, field, message", [
    (("mac_array", "dataflows"), "ws", "mac_array.dataflows", "unknown key"),
    (("buffers", 0, "capacity_bytes"), -1, "buffers.0.capacity_bytes", "greater than 0"),
    (("dram", "burst_bytes"), -32, "dram.burst_bytes", "greater than 0"),
    # 32x32 partial sums at 32 bits: 4096 bytes at least.
    (("buffers", 2, "capacity_bytes"), 2048, "buffers.2.capacity_bytes", "valid: >= 4096"),
    (("buffers", 0, "capacity_bytes"), 1000, "buffers.0.capacity_bytes", "32x32 tile"),
    # Horowitz's table has no 16-bit integer multiply.
    (("mac_array", "precision"), {"dtype": "int", "bits": 16, "accumulator_bits": 32}, "mac_array.precision",
     "no 16-bit int MAC"),
    (("mac_array", "zero_weights"), "skip", "weight_format.kind", "needs a compressed format"),
    (("mac_array", "zero_activations"), "skip", "mac_array.zero_activations", "valid: 'execute', 'gate'"),
    (("mac_array", "dataflow"), "rs", "mac_array.dataflow", "'ws', 'os' or 'is'"),
    (("mac_array", "dataflow"), None, "mac_array.dataflow", "required for kind 'systolic'"),
    (("mac_array", "precision", "overflow"), "wrap", "mac_array.precision.overflow", "dtype 'int' only"),
    (("mac_array", "precision", "accumulator_bits"), 8, "mac_array.precision.accumulator_bits", ">= bits (16)"),
    (("mac_array", "precision", "bits"), 24, "mac_array.precision", "IEEE"),
    (("dram", "interface"), "ddr9", "dram.interface", "lpddr4"),
    (("energy", "table"), "nosuchtable", "energy.table", "horowitz45"),
])
def test_bad_systolic_fields_are_named(tmp_path, systolic_dict, path, value, field, message):
    assert_field_rejected(tmp_path, systolic_dict, path, value, field, message)


def assert_field_rejected(tmp_path, data, path, value, field, message):
    """Set (or, with ``value`` None, delete) the field at ``path`` of a description ``data``, write it
    and require load_hardware to reject it naming the file, ``field`` and ``message``."""
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    with pytest.raises(HardwareError) as error:
        load_hardware(_write(tmp_path, data))
    assert f"field '{field}" in str(error.value) and message in str(error.value), str(error.value)
    assert str(tmp_path / "hw.yaml") in str(error.value)


def test_an_int8_systolic_file_loads(tmp_path, systolic_dict):
    systolic_dict["mac_array"]["precision"] = {"dtype": "int", "bits": 8, "accumulator_bits": 32}
    hw = load_hardware(_write(tmp_path, systolic_dict))
    assert hw.mac_array.precision.overflow_mode == "saturate" and hw.mac_array.dataflow == "ws"


def test_dataflow_belongs_to_systolic_arrays(tmp_path, han45nm_dict):
    han45nm_dict["mac_array"]["dataflow"] = "ws"
    with pytest.raises(HardwareError, match="field 'mac_array.dataflow': applies to kind 'systolic' only"):
        load_hardware(_write(tmp_path, han45nm_dict))
