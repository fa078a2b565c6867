r"""DPO that does not reward length for its own sake: segment-wise length desensitisation and
length-balanced batches.

**The objective.** DPO scores a completion by its summed log-probability, so a longer completion
moves the implicit reward further just by having more tokens; with a preference set whose chosen
answers are longer, the policy learns "longer is better" (length drift). LD-DPO (stock TRL's
`ld_alpha`) down-weights every token beyond the length the two completions share. Reasoning
completions have two parts with different roles: a `<think>...</think>` (or `<thought>...</thought>`,
the tags of `hf_reason.decoding`; any configured pair) segment whose length is
mostly verbosity, and an answer that must be scored in full. `LengthBalancedDPOTrainer` splits each
completion into its thought segment (from the opening through the closing tag; to the end if the
block is never closed) and its answer segment (every other completion token), and scores

    log pi(y | x) = sum_{t in thought} w_t log p_t + sum_{t in answer} v_t log p_t
    w_t = 1 if k(t) <= min(T_chosen, T_rejected) else think_alpha
    v_t = 1 if j(t) <= min(A_chosen, A_rejected) else answer_alpha

with `k(t)` / `j(t)` the token's 1-based position inside its segment, `T` / `A` the pair's
thought / answer lengths in tokens. The same weights apply to the policy and the reference
log-probs; the DPO loss (`loss_type`, `beta`, ...) is then TRL's, unchanged. `think_alpha=1` and
`answer_alpha=1` give stock DPO exactly; `answer_alpha=1` (default) scores the answer in full.

**The sampler.** `LengthBalancedSampler` orders the training pairs so that, within every
per-device batch, the chosen-minus-rejected completion length difference sums to at most the
largest single difference in absolute value (so its mean is within `max|d| / batch_size` of zero):
each slot takes a pair whose difference has the opposite sign of the batch's running sum. Pairs of
the rarer direction are recycled within an epoch, which re-weights the data so that length no
longer predicts preference inside a batch. It needs pairs in both directions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Optional, Union

import torch
from torch.utils.data import Sampler
from trl import DPOTrainer

from ._model_card import ModelCardMixin
from .dpo_config import LengthBalancedDPOConfig
from .utils import check_4bit_weights_trainable, keep_4bit_weights_trainable


__all__ = ["LengthBalancedDPOTrainer", "LengthBalancedSampler", "segment_token_weights"]


def segment_token_weights(
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    think_start_id: Union[int, Sequence[int]],
    think_end_id: Union[int, Sequence[int]],
    think_alpha: float,
    answer_alpha: float,
) -> torch.Tensor:
    """Per-token weights for a DPO batch laid out as TRL's collator does ([chosen rows; rejected rows]).

    `think_start_id` / `think_end_id` are one tag pair's ids or lists of pairs (same index); a
    completion's thought segment opens at its first opening tag and closes at that tag's partner.
    Returns a `(2N, L - 1)` tensor aligned with the shifted (next-token) log-probs: entry `t`
    weights the log-prob of `input_ids[:, t + 1]`. Non-completion positions get 1 (their
    log-probs are zero anyway).
    """
    starts = [think_start_id] if isinstance(think_start_id, int) else list(think_start_id)
    ends = [think_end_id] if isinstance(think_end_id, int) else list(think_end_id)
    if len(starts) != len(ends):
        raise ValueError(f"every opening tag needs its closing tag, got {starts} and {ends}")
    partner = dict(zip(starts, ends))
    n_rows, length = input_ids.shape
    if n_rows % 2:
        raise ValueError(f"a DPO batch has as many chosen as rejected rows, got {n_rows} rows")
    ids, mask = input_ids.tolist(), completion_mask.tolist()
    seg_pos, is_thought, thought_len, answer_len = [], [], [], []
    for row_ids, row_mask in zip(ids, mask):
        positions = [t for t, m in enumerate(row_mask) if m]
        tokens = [row_ids[t] for t in positions]
        start = next((i for i, token in enumerate(tokens) if token in partner), None)
        end = None
        if start is not None:
            close = partner[tokens[start]]
            end = next((i for i in range(start + 1, len(tokens)) if tokens[i] == close), len(tokens) - 1)
        in_thought = [start is not None and start <= i <= end for i in range(len(tokens))]
        pos_t = pos_a = 0
        row_seg = [0] * length
        row_thought = [False] * length
        for i, t in enumerate(positions):
            if in_thought[i]:
                pos_t += 1
                row_seg[t], row_thought[t] = pos_t, True
            else:
                pos_a += 1
                row_seg[t] = pos_a
        seg_pos.append(row_seg)
        is_thought.append(row_thought)
        thought_len.append(pos_t)
        answer_len.append(pos_a)

    half = n_rows // 2
    weights = torch.ones(n_rows, length, dtype=torch.float32)
    for r in range(n_rows):
        pair = r % half
        shared_t = min(thought_len[pair], thought_len[pair + half])
        shared_a = min(answer_len[pair], answer_len[pair + half])
        for t in range(length):
            k = seg_pos[r][t]
            if k == 0:
                continue
            if is_thought[r][t]:
                weights[r, t] = 1.0 if k <= shared_t else think_alpha
            else:
                weights[r, t] = 1.0 if k <= shared_a else answer_alpha
    return weights[:, 1:].to(input_ids.device)


class LengthBalancedSampler(Sampler[int]):
    """Yields dataset indices so that each consecutive block of `batch_size` is length-balanced.

    Args:
        length_differences (`Sequence[int]`): chosen-minus-rejected completion length per pair.
        batch_size (`int`): the per-device batch size the indices are consumed in.
        seed (`int`, defaults to 0): order of an epoch is a function of `seed` and the epoch.
        window (`int`, defaults to 8): each slot takes, among the next `window` candidates of the
            needed direction, the one that brings the batch's running sum closest to zero.

    Guarantee: within every block, the summed difference is at most `max |d|` in absolute value.
    """

    def __init__(self, length_differences: Sequence[int], batch_size: int, seed: int = 0, window: int = 8):
        diffs = [int(d) for d in length_differences]
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        longer = sum(d > 0 for d in diffs)
        shorter = sum(d < 0 for d in diffs)
        if (longer == 0) != (shorter == 0):
            raise ValueError(
                "length balancing needs pairs in both directions: "
                f"{longer} pairs have the chosen completion longer, {shorter} shorter. "
                "Set length_balanced_batches=False, or add pairs of the missing direction."
            )
        self.diffs, self.batch_size, self.seed, self.window, self.epoch = diffs, batch_size, seed, window, 0

    def __len__(self) -> int:
        return len(self.diffs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        groups = {sign: [] for sign in (1, -1, 0)}
        for i, d in enumerate(self.diffs):
            groups[(d > 0) - (d < 0)].append(i)
        pools = {sign: [] for sign in groups}

        def draw(sign: int, running: int) -> int:
            pool = pools[sign]
            if not pool:  # recycle a direction once it is used up: the rarer one comes back more often
                order = torch.randperm(len(groups[sign]), generator=generator).tolist()
                pool.extend(groups[sign][i] for i in order)
            # candidates are taken from the end so that removing one is O(1)
            start = max(0, len(pool) - self.window)
            best = min(range(start, len(pool)), key=lambda j: abs(running + self.diffs[pool[j]]))
            pool[best], pool[-1] = pool[-1], pool[best]
            return pool.pop()

        emitted, running = 0, 0
        while emitted < len(self.diffs):
            if emitted % self.batch_size == 0:
                running = 0
            if running > 0:
                sign = -1
            elif running < 0:
                sign = 1
            elif groups[0] and (not groups[1] or torch.rand(1, generator=generator).item() < 0.5):
                sign = 0
            else:
                sign = 1 if groups[1] else 0
            index = draw(sign, running)
            running += self.diffs[index]
            emitted += 1
            yield index


class LengthBalancedDPOTrainer(ModelCardMixin, DPOTrainer):
    """`trl.DPOTrainer` with segment-wise length desensitisation and length-balanced batches.

    Takes exactly `DPOTrainer`'s arguments, with `args` a [`LengthBalancedDPOConfig`]; see the
    module docstring for the objective. A bitsandbytes 4-bit (QLoRA) model stays trainable across
    evaluations during training (`keep_4bit_weights_trainable`); one already repacked for CPU
    inference is refused when training starts (`check_4bit_weights_trainable`).
    """

    _tag_names = ["trl", "dpo", "hf-reason"]

    def __init__(self, *args, **kwargs):
        args_ = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(args_, LengthBalancedDPOConfig):
            raise ValueError(f"`args` must be a LengthBalancedDPOConfig, got {type(args_).__name__}")
        self._think_ids: Optional[tuple[list[int], list[int]]] = None
        model = kwargs.get("model", args[0] if args else None)
        if isinstance(model, torch.nn.Module):
            # before TRL's __init__, which may already run no-grad reference forwards (precompute_ref_log_probs)
            keep_4bit_weights_trainable(model)
        super().__init__(*args, **kwargs)
        keep_4bit_weights_trainable(self.model)  # a model TRL loaded from a name

    def _tag_ids(self) -> tuple[list[int], list[int]]:
        """The (opening, closing) ids of the configured tag pairs the tokenizer has as single tokens."""
        # resolved lazily: TRL precomputes reference log-probs inside its own __init__
        if self._think_ids is None:
            tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
            starts, ends, missing = [], [], []
            for start, end in zip(self.args.think_start_token, self.args.think_end_token):
                encoded = [tokenizer(tag, add_special_tokens=False)["input_ids"] for tag in (start, end)]
                single = [len(ids) == 1 for ids in encoded]
                if all(single):
                    starts.append(encoded[0][0])
                    ends.append(encoded[1][0])
                elif any(single):
                    raise ValueError(
                        f"The thought tags {start!r} / {end!r} must both encode to single tokens, got "
                        f"{[len(ids) for ids in encoded]} tokens; add both to the tokenizer as special tokens"
                    )
                else:
                    missing.append(f"{start!r} ({len(encoded[0])} tokens)")
            if not starts:
                raise ValueError(
                    f"`think_start_token`: none of the thought tags is a single token of the tokenizer "
                    f"({', '.join(missing)}); add a pair as special tokens (tokenizer.add_special_tokens, or "
                    "hf_reason.data.add_control_tokens for <thought>) and resize the embeddings"
                )
            self._think_ids = (starts, ends)
        return self._think_ids

    @contextlib.contextmanager
    def _weighted(self, inputs, model, expected_forwards: int):
        """Re-weights the per-token log-probs of every policy / reference forward inside the block.

        TRL sums per-token log-probs inside `_compute_loss` with no hook in between, so the weights
        are applied to the fused LM head's per-token output (a forward hook on the unwrapped
        modules, each called exactly once per forward whether or not DDP / PEFT wrap it).

        The block must run exactly `expected_forwards` fused forwards, each weighted; anything else
        raises instead of quietly training plain DPO (e.g. after a TRL change in how it computes
        the log-probs).
        """
        weights = segment_token_weights(
            inputs["input_ids"],
            inputs["completion_mask"],
            *self._tag_ids(),
            think_alpha=self.args.think_alpha,
            answer_alpha=self.args.answer_alpha,
        )
        applied = []

        def hook(module, args, kwargs, output):
            if not kwargs.get("fused_lm_head"):
                return None  # not a log-prob forward of the loss (TRL asks for those with fused_lm_head=True)
            log_probs = getattr(output, "log_probs", None)
            if (
                log_probs is None
                or log_probs.dim() != 2
                or log_probs.size(0) != weights.size(0)
                or log_probs.size(1) < weights.size(1)
            ):
                shape = None if log_probs is None else tuple(log_probs.shape)
                raise RuntimeError(
                    f"LengthBalancedDPOTrainer expects per-token log-probs of shape ({weights.size(0)}, >= "
                    f"{weights.size(1)}) from a fused_lm_head forward, got {shape}: this TRL version computes DPO "
                    "log-probs differently, so the length weights cannot be applied (the loss would be plain DPO)"
                )
            width = weights.size(1)
            w = weights.to(device=log_probs.device, dtype=log_probs.dtype)
            output.log_probs = torch.cat([log_probs[:, :-width], log_probs[:, -width:] * w], dim=1)
            applied.append(type(module).__name__)
            return output

        targets = {}
        for module in (self.accelerator.unwrap_model(model), self.model, self.ref_model):
            if module is not None:
                targets[id(module)] = module
        handles = [m.register_forward_hook(hook, with_kwargs=True) for m in targets.values()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
        if len(applied) != expected_forwards:
            raise RuntimeError(
                f"LengthBalancedDPOTrainer weighted {len(applied)} log-prob forwards where the DPO loss runs "
                f"{expected_forwards} (policy{'' if expected_forwards == 1 else ' and reference'}): this TRL version "
                "computes the log-probs outside the forwards the length weights hook into, so they were not applied "
                "as intended. Use the TRL range hf-reason pins (pyproject.toml)."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # the policy forward, and the reference forward unless its log-probs were precomputed into the batch
        expected = 1 if self.precompute_ref_logps else 2
        with self._weighted(inputs, model, expected_forwards=expected):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def compute_ref_log_probs(self, model, inputs):
        with self._weighted(inputs, model, expected_forwards=1):
            return super().compute_ref_log_probs(model, inputs)

    def train(self, *args, **kwargs):
        check_4bit_weights_trainable(self.model)  # e.g. the user evaluated the model between two train() calls
        keep_4bit_weights_trainable(self.model)
        return super().train(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.args.length_balanced_batches or dataset is None or not hasattr(dataset, "column_names"):
            return super()._get_train_sampler(train_dataset)
        diffs = [len(c) - len(r) for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True)]
        return LengthBalancedSampler(diffs, batch_size=self.args.per_device_train_batch_size, seed=self.args.seed)
