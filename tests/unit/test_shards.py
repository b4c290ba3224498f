"""Sharded partitions: a stable shard per id, and per-shard Queries merged lazily into one order."""

from __future__ import annotations

from itertools import islice

from aiplane.data.shards import SHARDS, merged, shard_keys, shard_of, shard_page_size


def test_a_shard_is_stable_and_ids_spread():
    assert shard_of("node-1") == shard_of("node-1")
    assert len({shard_of(f"node-{n}") for n in range(200)}) == SHARDS
    assert shard_keys("FILES#ALL", 3) == ["FILES#ALL#0", "FILES#ALL#1", "FILES#ALL#2"]


def test_the_merge_reads_only_as_far_as_the_page_needs():
    pulled = []

    def shard(values):
        for value in values:
            pulled.append(value)
            yield value

    shards = [shard(range(start, 1000, 4)) for start in range(4)]
    assert list(islice(merged(shards, key=lambda value: value), 10)) == list(range(10))
    assert len(pulled) <= 10 + 4
    descending = [shard(range(1000 - start, 0, -4)) for start in range(4)]
    assert list(islice(merged(descending, key=lambda value: value, reverse=True), 3)) == [1000, 999, 998]


def test_each_shard_reads_its_share_of_a_page_and_one_more():
    assert shard_page_size(100) == 14 and shard_page_size(1) == 2
