"""Curating generated data: difficulty, diversity and quality filters; single / multi-turn mixing; seed sets with a
controlled length distribution.

- **Difficulty** from the model's own pass rate on each item (k samples checked by a verifier): items it always
  solves teach nothing and items it never solves give no signal, so only rates inside a band are kept.
- **Diversity** by word n-gram clustering: an item joins the first cluster whose representative it overlaps with
  Jaccard similarity >= `similarity`, and at most `max_per_cluster` items are kept per cluster. Written here (a
  few lines over sets) rather than with an embedding model, which would need a download.
- **Quality** from any score (a verifier, a reward model): items under `min_quality` are dropped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Optional

import datasets


__all__ = ["curate", "length_controlled_sample", "mix_single_and_multi_turn", "ngram_clusters", "pass_rates"]


def pass_rates(outcomes: Sequence[Sequence[bool]]) -> list[float]:
    """Per item, the share of its sampled attempts that the verifier accepted."""
    return [sum(map(bool, o)) / len(o) if len(o) else 0.0 for o in outcomes]


def _ngrams(text: str, n: int) -> set:
    words = text.lower().split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set()


def ngram_clusters(texts: Sequence[str], n: int = 3, similarity: float = 0.5) -> list[int]:
    """Cluster id per text: greedy leader clustering on word n-gram Jaccard similarity."""
    leaders: list[set] = []
    assignment = []
    for text in texts:
        grams = _ngrams(text, n)
        for cluster, leader in enumerate(leaders):
            union = len(grams | leader)
            if union and len(grams & leader) / union >= similarity:
                assignment.append(cluster)
                break
        else:
            leaders.append(grams)
            assignment.append(len(leaders) - 1)
    return assignment


def curate(
    dataset: datasets.Dataset,
    text_field: str = "prompt",
    pass_rate: Optional[Sequence[float]] = None,
    min_pass_rate: float = 0.0,
    max_pass_rate: float = 1.0,
    quality: Optional[Sequence[float]] = None,
    min_quality: Optional[float] = None,
    max_per_cluster: Optional[int] = None,
    ngram: int = 3,
    similarity: float = 0.5,
) -> tuple[datasets.Dataset, dict]:
    """The rows that pass the difficulty, quality and diversity filters, in their order, and a report of what
    each filter removed.

    Args:
        dataset (`datasets.Dataset`): the generated data.
        text_field (`str`, defaults to `"prompt"`): the column compared for diversity.
        pass_rate (`Sequence[float]`, *optional*): the model's pass rate per row (`pass_rates`); rows outside
            [`min_pass_rate`, `max_pass_rate`] are dropped (bounds inclusive).
        quality (`Sequence[float]`, *optional*) / min_quality (`float`, *optional*): a score per row and its floor.
        max_per_cluster (`int`, *optional*): most rows kept per n-gram cluster (None: no diversity filter).
        ngram (`int`, defaults to 3), similarity (`float`, defaults to 0.5): the clustering (`ngram_clusters`).
    """
    n = len(dataset)
    for name, values in (("pass_rate", pass_rate), ("quality", quality)):
        if values is not None and len(values) != n:
            raise ValueError(f"`{name}` needs one value per row ({n}), got {len(values)}")
    if not 0.0 <= min_pass_rate <= max_pass_rate <= 1.0:
        raise ValueError(f"need 0 <= min_pass_rate <= max_pass_rate <= 1, got {min_pass_rate}, {max_pass_rate}")
    keep = list(range(n))
    report = {"rows": n}
    if pass_rate is not None:
        keep = [i for i in keep if min_pass_rate <= pass_rate[i] <= max_pass_rate]
        report["removed_by_difficulty"] = n - len(keep)
    if quality is not None and min_quality is not None:
        before = len(keep)
        keep = [i for i in keep if quality[i] >= min_quality]
        report["removed_by_quality"] = before - len(keep)
    if max_per_cluster is not None:
        if max_per_cluster < 1:
            raise ValueError(f"`max_per_cluster` must be >= 1, got {max_per_cluster}")
        clusters = ngram_clusters([dataset[i][text_field] for i in keep], ngram, similarity)
        taken: dict[int, int] = {}
        kept = []
        for i, cluster in zip(keep, clusters):
            if taken.get(cluster, 0) < max_per_cluster:
                taken[cluster] = taken.get(cluster, 0) + 1
                kept.append(i)
        report["removed_by_diversity"] = len(keep) - len(kept)
        report["clusters"] = len(set(clusters))
        keep = kept
    report["kept"] = len(keep)
    return dataset.select(keep), report


def mix_single_and_multi_turn(
    single_turn: datasets.Dataset, multi_turn: datasets.Dataset, multi_turn_fraction: float = 0.25, seed: int = 0
) -> datasets.Dataset:
    """Single- and multi-turn rows interleaved at `multi_turn_fraction` (0.25: the 75/25 mix), with
    `datasets.interleave_datasets`; it stops when the multi-turn set is used up, so the mix holds exactly."""
    if not 0.0 < multi_turn_fraction < 1.0:
        raise ValueError(f"`multi_turn_fraction` must be in (0, 1), got {multi_turn_fraction}")
    return datasets.interleave_datasets(
        [single_turn, multi_turn],
        probabilities=[1.0 - multi_turn_fraction, multi_turn_fraction],
        seed=seed,
        stopping_strategy="first_exhausted",
    )


def length_controlled_sample(
    dataset: datasets.Dataset,
    num_rows: int,
    bins: Sequence[int],
    fractions: Sequence[float],
    length: Callable[[dict], int] = lambda row: len(row["completion"].split()),
    seed: int = 0,
) -> datasets.Dataset:
    """A seed set of `num_rows` rows whose lengths follow `fractions` over the bins ``[bins[i], bins[i+1])``.

    Args:
        dataset: the pool.
        num_rows (`int`): rows wanted.
        bins (`Sequence[int]`): increasing bin edges (len(fractions) + 1 of them).
        fractions (`Sequence[float]`): the share of rows per bin, summing to 1.
        length: a row's length (defaults to the words of its `completion`).
        seed (`int`, defaults to 0).

    Raises:
        `ValueError` when a bin has fewer rows in the pool than its share needs.
    """
    if len(bins) != len(fractions) + 1 or list(bins) != sorted(bins):
        raise ValueError(f"need increasing `bins` with one more edge than `fractions`, got {bins} and {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"`fractions` must be >= 0 and sum to 1, got {fractions}")
    rng = random.Random(seed)
    members: list[list[int]] = [[] for _ in fractions]
    for index, row in enumerate(dataset):
        value = length(row)
        for b in range(len(fractions)):
            if bins[b] <= value < bins[b + 1]:
                members[b].append(index)
                break
    counts = [round(f * num_rows) for f in fractions]
    counts[-1] += num_rows - sum(counts)
    chosen = []
    for b, (count, rows) in enumerate(zip(counts, members)):
        if count > len(rows):
            raise ValueError(f"length bin [{bins[b]}, {bins[b + 1]}) has {len(rows)} rows, {count} are needed")
        chosen += rng.sample(rows, count)
    rng.shuffle(chosen)
    return dataset.select(chosen)
