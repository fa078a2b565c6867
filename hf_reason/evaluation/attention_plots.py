"""Attention heat-maps as PNG: what the model looked at while writing a report's key step.

Kept out of the model folder so that a `trust_remote_code` checkpoint never needs matplotlib.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import torch

from ..file_io import save_figure_atomic


def _check_index(name: str, value, size: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size):
        raise ValueError(f"`{name}` must be None (average) or an integer in [0, {size}), got {value!r}.")


def attention_matrix(
    attentions: Union[Sequence[torch.Tensor], torch.Tensor],
    query_positions: Optional[Sequence[int]] = None,
    layer: Optional[int] = None,
    head: Optional[int] = None,
    batch_index: int = 0,
) -> torch.Tensor:
    """The `(len(query_positions), keys)` attention matrix of one sequence.

    Args:
        attentions: the `attentions` of a model output (one `(batch, heads, queries, keys)` tensor per
            layer) or a stacked `(layers, heads, queries, keys)` tensor of one sequence.
        query_positions: the rows to keep (e.g. the tokens of one report step); all by default.
        layer / head: pick one layer / head; `None` averages over them.
        batch_index: the sequence, when `attentions` has a batch axis.
    """
    if isinstance(attentions, torch.Tensor):
        if attentions.ndim != 4:
            raise ValueError(
                f"a stacked `attentions` tensor must be (layers, heads, queries, keys), got {tuple(attentions.shape)}"
            )
        maps = attentions
    else:
        if not attentions or any(a is None for a in attentions):
            raise ValueError("`attentions` must hold every layer's map: run the model with output_attentions=True")
        maps = torch.stack([a[batch_index] for a in attentions])
    maps = maps.detach().float().cpu()
    _check_index("layer", layer, maps.shape[0])
    _check_index("head", head, maps.shape[1])
    maps = maps.mean(0) if layer is None else maps[layer]
    maps = maps.mean(0) if head is None else maps[head]
    if query_positions is not None:
        rows = list(query_positions)
        if not rows or any(not 0 <= p < maps.shape[0] for p in rows):
            raise ValueError(f"`query_positions` must be non-empty indices in [0, {maps.shape[0]}), got {rows!r}")
        maps = maps[rows]
    return maps


def section_token_positions(offsets: Sequence[Sequence[int]], text: str, header: str) -> list[int]:
    """Token positions of the report section that starts with the line `header:` (e.g. `"Step 2"`).

    The section runs to the next line that starts a section (`Name:`) or to the end. `offsets` is a
    fast tokenizer's `offset_mapping` of `text`.
    """
    match = re.search(rf"^[ \t]*{re.escape(header)}:", text, flags=re.MULTILINE)
    if match is None:
        raise ValueError(f"the text has no section `{header}:`")
    following = re.search(r"^[ \t]*[A-Z][A-Za-z]*(?:[ \t]*\d+)?:", text[match.end() :], flags=re.MULTILINE)
    end = match.end() + following.start() if following else len(text)
    positions = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > match.start()]
    if not positions:
        raise ValueError(f"no token falls inside the section `{header}:`")
    return positions


def save_attention_heatmap(
    attentions: Union[Sequence[torch.Tensor], torch.Tensor],
    path: Union[str, os.PathLike],
    query_positions: Optional[Sequence[int]] = None,
    tokens: Optional[Sequence[str]] = None,
    layer: Optional[int] = None,
    head: Optional[int] = None,
    batch_index: int = 0,
    title: Optional[str] = None,
    max_keys: int = 96,
) -> Path:
    """Writes the heat-map of `attention_matrix(...)` as a PNG (atomically) and returns its path.

    Rows are the query positions (the step's tokens), columns the attended keys, labelled with
    `tokens` when given. Only the last `max_keys` keys up to the last row are drawn, so long prompts
    stay legible.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    matrix = attention_matrix(attentions, query_positions, layer, head, batch_index)
    rows = list(query_positions) if query_positions is not None else list(range(matrix.shape[0]))
    last_key = max(rows) + 1
    first_key = max(0, last_key - max_keys)
    matrix = matrix[:, first_key:last_key]
    if tokens is not None and len(tokens) < last_key:
        raise ValueError(f"`tokens` must label every position up to {last_key - 1}, got {len(tokens)} tokens")

    def label(p: int) -> str:
        return f"{p}:{tokens[p]!r}"[:24] if tokens is not None else str(p)

    width = min(2 + 0.22 * matrix.shape[1], 40)
    height = min(2 + 0.22 * matrix.shape[0], 40)
    fig, ax = plt.subplots(figsize=(max(width, 4), max(height, 3)))
    image = ax.imshow(matrix.numpy(), aspect="auto", cmap="viridis", vmin=0.0)
    fig.colorbar(image, ax=ax, label="attention probability")
    ax.set_xticks(range(matrix.shape[1]), [label(p) for p in range(first_key, last_key)], rotation=90, fontsize=6)
    ax.set_yticks(range(matrix.shape[0]), [label(p) for p in rows], fontsize=6)
    ax.set_xlabel("attended position")
    ax.set_ylabel("writing position")
    where = f"layer {layer}" if layer is not None else "mean over layers"
    where += f", head {head}" if head is not None else ", mean over heads"
    ax.set_title(f"{title} ({where})" if title else where, fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=120)


__all__ = ["attention_matrix", "save_attention_heatmap", "section_token_positions"]
