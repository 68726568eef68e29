"""The resume cache's packs: what was appended survives, a record cut short is dropped."""

from __future__ import annotations

import os

from itscube.io.chunkcache import ABSENT, ChunkCache, cached_keys


def test_pack_round_trip_and_cut_short_record(tmp_path):
    cache = ChunkCache(tmp_path)
    blobs = {f"vx/0.{i}.0": os.urandom(100 + i) for i in range(50)}
    for k, v in blobs.items():
        cache.put(k, v)
    cache.put("vy/absent", None)
    assert cache.get("vx/0.3.0") == blobs["vx/0.3.0"]  # held before the writer wrote it
    cache.close()
    (pack,) = tmp_path.glob("*.pack")
    whole = pack.stat().st_size
    with open(pack, "ab") as f:  # a kill half-way through the next record
        f.write(b"\x08\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00vx/9.9.")
    again = ChunkCache(tmp_path)
    assert len(again) == 51
    assert all(again.get(k) == v for k, v in blobs.items())
    assert again.get("vy/absent") is ABSENT
    assert again.get("vx/9.9.9") is None  # the cut record is not served
    assert sorted(cached_keys(tmp_path)) == sorted([*blobs, "vy/absent"])
    again.put("vx/new", b"xyz")  # a second run appends to a pack of its own
    again.close()
    assert len(list(tmp_path.glob("*.pack"))) == 2 and pack.stat().st_size > whole
    assert ChunkCache(tmp_path).get("vx/new") == b"xyz"
