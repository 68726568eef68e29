"""The synthetic image-pair cubes against the production schema, written out once in
``tests/fixtures/itslive_v2_subyearly_schema.json`` from the archive's documentation (names,
dims, dtypes, fill values, attributes, codecs, chunking), not from the generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SCHEMA = json.loads(
    (Path(__file__).parent / "fixtures" / "itslive_v2_subyearly_schema.json").read_text()
)


def _chunks(rule: str, n: int, shape: list[int]) -> list[int]:
    return {
        "min(n, 20000), 10, 10": [min(n, 20000), 10, 10],
        "n": [n],
        "whole": shape,
    }[rule]


@pytest.fixture(scope="module")
def store(cubes):
    return cubes.a_path


def test_store_level_metadata(store):
    assert SCHEMA["zarr_format"] == 2 and (store / ".zmetadata").is_file()
    meta = json.loads((store / ".zmetadata").read_text())["metadata"]
    attrs = meta[".zattrs"]
    for key, value in SCHEMA["global_attrs"].items():
        assert attrs.get(key) == value, key
    missing = [k for k in SCHEMA["global_attrs_present"] if k not in attrs]
    assert missing == []


@pytest.mark.parametrize("group", sorted(SCHEMA["groups"]))
def test_every_variable_follows_the_schema(store, group):
    meta = json.loads((store / ".zmetadata").read_text())["metadata"]
    n = meta["mid_date/.zarray"]["shape"][0]
    spec = SCHEMA["groups"][group]
    for name in spec["names"]:
        assert f"{name}/.zarray" in meta, f"{name} missing"
        z, attrs = meta[f"{name}/.zarray"], meta.get(f"{name}/.zattrs", {})
        where = f"{group}/{name}"
        if "dims" in spec:
            assert attrs["_ARRAY_DIMENSIONS"] == spec["dims"], where
        if "dtype" in spec:
            assert z["dtype"] == spec["dtype"], where
        if "dtype_kind" in spec:
            assert np.dtype(z["dtype"]).kind == spec["dtype_kind"], where
        if "fill_value" in spec:
            assert z["fill_value"] == spec["fill_value"], (where, z["fill_value"])
        for key, value in spec.get("attrs", {}).items():
            assert attrs.get(key) == value, (where, key, attrs.get(key))
        assert [k for k in spec.get("attrs_present", []) if k not in attrs] == [], where
        if "chunks" in spec:
            assert z["chunks"] == _chunks(spec["chunks"], n, z["shape"]), where
        comp = SCHEMA["compressor"]
        assert {k: z["compressor"][k] for k in comp} == comp, where


def test_sensor_codes_are_the_archives(cubes, store):
    import zarr

    g = zarr.open_group(store, mode="r")
    for name, allowed in SCHEMA["values"].items():
        seen = set(np.unique(g[name][:]).tolist())
        assert seen <= set(allowed), (name, seen - set(allowed))
