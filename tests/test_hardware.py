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
