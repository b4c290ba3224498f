"""The vectorised ranking of search (numpy over float32 rows) orders results as the former pure-Python
ranking did (float32 screening, then float64 scores of the candidates): cosine similarity, best first, ties by chunk key, radius as a cosine-distance bound, zero
vectors scoring 0 and vectors of another dimension -1."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from aiplane.files.ranking import rank, similarities
from aiplane.files.vectors import Block


def reference_cosine(a: list[float], b: list[float]) -> float:
    """The former search.cosine, verbatim."""
    if len(a) != len(b):
        return -1.0
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norm if norm else 0.0


def reference_ranking(query: list[float], rows: list[list[float]], top_k: int, radius: float | None) -> list[int]:
    """The former search loop: score every row, keep those within the radius, sort by (-score, key)."""
    scored = []
    for key, row in enumerate(rows):
        similarity = reference_cosine(query, row)
        if radius is None or 1.0 - similarity <= radius:
            scored.append((similarity, key))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [key for _, key in scored[:top_k]]


def vectorised_ranking(query: list[float], rows: list[list[float]], top_k: int, radius: float | None) -> list[int]:
    """search.rank over blocks of up to 7 consecutive rows of one dimension (positions are the row keys)."""
    blocks, start = [], 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and end - start < 7 and len(rows[end]) == len(rows[start]):
            end += 1
        packed = np.asarray(rows[start:end], dtype="<f4").tobytes()
        blocks.append(Block("doc", start, end - start, len(rows[start]), packed))
        start = end
    return [position for (_, position), _ in rank(np.asarray(query, dtype=np.float64), blocks, top_k, radius)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("top_k", "radius"), [(1, None), (10, None), (500, None), (10, 0.5), (1000, 0.9), (5, 0.0)])
def test_the_vectorised_ranking_matches_the_former_one(seed, top_k, radius):
    generator = random.Random(seed)
    # small integer vectors: many exact ties, some zero vectors, a few of another dimension
    rows = [[float(generator.randint(0, 2)) for _ in range(4)] for _ in range(400)]
    rows += [[0.0] * 4, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    generator.shuffle(rows)
    query = [float(generator.randint(0, 2)) for _ in range(3)] + [1.0]
    assert vectorised_ranking(query, rows, top_k, radius) == reference_ranking(query, rows, top_k, radius)


def test_similarities_of_a_block():
    matrix = np.asarray([[1, 0], [0, 2], [0, 0], [-3, 0]], dtype="<f4")
    assert similarities(np.asarray([2.0, 0.0]), matrix).tolist() == [1.0, 0.0, 0.0, -1.0]
