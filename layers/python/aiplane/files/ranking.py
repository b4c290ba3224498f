"""The exact cosine ranking of semantic search, vectorised with numpy over the float32 blocks
`aiplane.files.vectors` stores. Imported by the calls that rank (`search.load_ranking`), not at init."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aiplane.files import vectors

FLOAT32 = np.dtype("<f4")  # as aiplane.files.vectors stores them
SCREEN_MARGIN = 1e-3  # float32 cosine errors are ~1e-6


def similarities(query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row with the query (0 for a zero vector), in the query's precision."""
    rows = matrix.astype(query.dtype, copy=False)
    norms = np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
    dots = rows @ query
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def top_rows(scores: np.ndarray, top_k: int, max_distance: float | None) -> np.ndarray:
    """The rows of the k best scores, best first, ties in row (key) order; within `max_distance` when given."""
    rows = np.arange(len(scores))
    if max_distance is not None:
        keep = 1.0 - scores <= max_distance
        rows, scores = rows[keep], scores[keep]
    if len(rows) > top_k:  # every row tied with the k-th best stays, so ties break by key as a full sort would
        keep = scores >= np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        rows, scores = rows[keep], scores[keep]
    return rows[np.lexsort((rows, -scores))][:top_k]


def float32_rows(rows: list[list[float]]) -> np.ndarray:
    """Embeddings as the matrix the index stores."""
    return np.asarray(rows, dtype=FLOAT32)


def rank(
    query: Sequence[float] | np.ndarray, blocks: list[vectors.Block], top_k: int, max_distance: float | None
) -> list[tuple[tuple[str, int], float]]:
    """The top k (document id, position) chunks of the blocks with their similarity, best first.
    Every row is screened in float32 (one BLAS product per block); the rows that can still be among
    the k best (or within the radius) by SCREEN_MARGIN, far above float32's error, are scored again
    in float64, so the ranking is the exact one."""
    vector = np.asarray(query, dtype=np.float64)
    query32 = vector.astype(FLOAT32)
    matrices = [np.frombuffer(block.vectors, FLOAT32).reshape(block.count, block.dimensions) for block in blocks]
    # vectors of another embedding model (another dimension) never match
    approx = (
        np.concatenate(
            [
                similarities(query32, matrix) if matrix.shape[1] == len(vector) else np.full(len(matrix), -1.0)
                for matrix in matrices
            ]
        ).astype(np.float64)
        if blocks
        else np.zeros(0)
    )
    keep = (
        approx >= 1.0 - max_distance - SCREEN_MARGIN if max_distance is not None else np.ones(len(approx), dtype=bool)
    )
    if keep.sum() > top_k:
        keep &= approx >= np.partition(approx[keep], keep.sum() - top_k)[keep.sum() - top_k] - SCREEN_MARGIN
    candidates = np.flatnonzero(keep)
    starts = np.cumsum([0] + [block.count for block in blocks])
    owners = np.searchsorted(starts, candidates, side="right") - 1
    exact = np.asarray(
        [
            similarities(vector, matrices[which][row - starts[which]][None, :])[0]
            if blocks[which].dimensions == len(vector)
            else -1.0
            for row, which in zip(candidates.tolist(), owners.tolist(), strict=True)
        ]
    )
    ranked = []
    for best in top_rows(exact, top_k, max_distance).tolist():  # positions in candidates: key order kept
        row, which = int(candidates[best]), int(owners[best])
        ranked.append(
            ((blocks[which].document_id, blocks[which].first_position + row - int(starts[which])), float(exact[best]))
        )
    return ranked
