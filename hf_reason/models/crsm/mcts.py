# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Monte-Carlo tree search over a CRSM's own recurrent state (deliberate decoding).

Before committing each token, `num_simulations` simulations grow a tree whose nodes hold the
recurrent state reached after their token (a snapshot of the cache, so a branch never recomputes
the prefix). Selection is PUCT with the LM's probabilities as priors (AlphaZero); a new leaf is
evaluated by one backbone step from its parent's state; up to `leaf_batch_size` leaves chosen
with virtual loss are evaluated together as one batch. The most visited child is committed; its
subtree is kept for the next token.

Leaf values (`rollout`):

- `"value"`: the value head on the leaf's state summary.
- `"dynamics"`: a latent rollout of `rollout_depth` steps with the dynamics model, no backbone
  call. The first step branches over the leaf's top-k tokens (the LM's real logits at the leaf);
  each branch then takes `rollout_depth - 1` further latent steps, each time with the token, among
  those same top-k candidates, whose predicted next summary the value head rates best (the
  dynamics model has no token distribution of its own, so the only real candidates are the
  leaf's). The leaf's value is the prior-weighted mean of the branches' final values. With
  `rollout_depth=1` it is the one-step look-ahead `sum_k p_k V(f(s, a_k)) / sum_k p_k`.
- `"model"`: a greedy rollout of `rollout_depth` real backbone steps, then the value head.

State delta (`apply_state_delta`). examples/train_crsm.py (stage 4) trains the state-delta
module with one correction of the prompt state: the prompt's own logits pick the first token,
the gold answer is then teacher-forced through the corrected state. Generation does the same by
default (`apply_state_delta=True` or `"prompt"`): the root state is corrected once, the whole
search runs from it and subtrees are kept. `"token"` also corrects the state after every
committed token (the subtree is then discarded, its states being uncorrected); corrections pile
up, so use it only with a model trained that way.

Written here because no maintained MCTS library searches over a transformers model's cache.

Asynchronous mode. The search for token t+1 starts from the node of token t, so it cannot begin
before token t is committed; and committing a token (appending an id, decoding it to text) costs
microseconds, so inside `generate` there is no idle time to hide a search in. Searching ahead
speculatively from the root's top-2 children while token t is still being decided adds nothing
either: the simulations of the search for t that went through the chosen child already are a
search from it (its subtree is kept), and the extra ones spent under the child that loses are
wasted work on the same cores. What can overlap is the search for t+1 with whatever the *consumer*
does with token t (send it over a network, synthesise speech, a person reading it): pass a
transformers streamer (`streamer=TextIteratorStreamer(...)`) and run `generate` in a thread, the
transformers idiom. Each token is put to the streamer the moment it is committed, `put` only
enqueues it, and the search for the next token starts at once in the generating thread while the
consumer thread handles it: a real background search, with output identical to the inline mode
(tests/test_crsm_modeling.py). It pays off when the consumer waits on I/O (it releases the cores
and the GIL); bench/crsm.py measures it by default (a 20 ms/token consumer, threaded vs inline).
"""

import math
from dataclasses import dataclass, field, fields
from typing import Optional, Union

import torch
from transformers.utils import ModelOutput

from .cache_crsm import CRSMCache, CRSMCacheState
from .configuration_crsm import _check_float


ROLLOUTS = ("value", "dynamics", "model")
STATE_DELTA_MODES = (False, True, "prompt", "token")


@dataclass
class CRSMDeliberationConfig:
    """
    How `generate(deliberation="mcts", ...)` searches before committing each token; every field can
    also be given to `generate` / `mcts_generate` as a keyword argument.

    Args:
        num_simulations (`int`, defaults to 16): simulations per committed token (>= 1). One
            simulation gives greedy decoding.
        c_puct (`float`, defaults to 1.5): exploration weight of the prior in PUCT (>= 0).
        top_k_expansion (`int`, defaults to 8): a node's candidate tokens are the LM's top-k (>= 1),
            with the probabilities renormalised over them as priors.
        rollout (`str`, defaults to `"value"`): leaf evaluation: `"value"` (value head on the leaf
            state), `"dynamics"` (a latent rollout of `rollout_depth` steps with the dynamics model,
            branching over the leaf's top-k tokens; see the module docstring), or `"model"` (greedy
            rollout of `rollout_depth` backbone steps, then the value head).
        rollout_depth (`int`, defaults to 4): steps of the `"dynamics"` and `"model"` rollouts (>= 1).
        leaf_batch_size (`int`, defaults to 8): leaves selected with virtual loss and evaluated in
            one batched backbone step (>= 1).
        apply_state_delta (`bool` or `str`, defaults to `False`): correct the recurrent state with the
            state-delta module (`h <- h + delta_damping * correction`). `True` or `"prompt"`: once,
            after the prompt, as examples/train_crsm.py trains it (the prompt's logits still pick
            the first token; every later state descends from the corrected one). `"token"`: after
            the prompt and after every committed token (its subtree is then discarded: its states
            were computed without the correction); only for a model trained that way. `None` is
            read as `False`.
    """

    num_simulations: int = 16
    c_puct: float = 1.5
    top_k_expansion: int = 8
    rollout: str = "value"
    rollout_depth: int = 4
    leaf_batch_size: int = 8
    apply_state_delta: Union[bool, str, None] = False

    def __post_init__(self):
        for name in ("num_simulations", "top_k_expansion", "rollout_depth", "leaf_batch_size"):
            _check_positive_int(name, getattr(self, name))
        _check_float("c_puct", self.c_puct, 0.0)
        if self.rollout not in ROLLOUTS:
            raise ValueError(f"`rollout` must be one of {ROLLOUTS}, got {self.rollout!r}")
        if self.apply_state_delta is None:
            self.apply_state_delta = False
        if not (
            isinstance(self.apply_state_delta, bool)
            or (isinstance(self.apply_state_delta, str) and self.apply_state_delta in STATE_DELTA_MODES)
        ):
            raise ValueError(f"`apply_state_delta` must be one of {STATE_DELTA_MODES}, got {self.apply_state_delta!r}")

    @property
    def state_delta_mode(self) -> Optional[str]:
        """`"prompt"`, `"token"`, or None (no correction)."""
        return "prompt" if self.apply_state_delta is True else (self.apply_state_delta or None)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")


# Copied from hf_reason.models.trm.supervision.check_ids
def check_ids(ids: torch.Tensor, name: str, size: int, size_name: str) -> torch.LongTensor:
    """`ids` as a LongTensor for an embedding of `size` rows, or a `ValueError` that names `name` and
    the dtype (floats and bools are not ids), or the table's `size_name=size` and the first id out of
    range with its position.

    Skipped while tracing or compiling (ONNX export, `torch.compile`): a branch on the values would be
    baked into the graph. The ONNX Runtime wrappers run this same check on their inputs.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return ids
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer ids; got dtype {ids.dtype}.")
    outside = (ids < 0) | (ids >= size)
    if outside.any():
        where = tuple(outside.nonzero()[0].tolist())
        raise ValueError(
            f"`{name}` must hold ids from 0 to {size - 1} ({size_name}={size}); got {ids[where].item()} at "
            f"position {where}."
        )
    return ids.long()


def check_prompt_batch(inputs=None, **kwargs) -> None:
    """A `ValueError` for an empty batch of prompts, in `inputs` or in `generate`'s `input_ids` /
    `inputs_embeds` (the other keyword arguments are ignored).

    Generation refuses an empty batch rather than return an empty result: transformers' decoding loop
    cannot run on one, and a batch that lost all its prompts upstream is a mistake better seen here.
    """
    for prompts in (inputs, kwargs.get("input_ids"), kwargs.get("inputs_embeds")):
        if prompts is not None and prompts.shape[0] == 0:
            raise ValueError(
                f"`generate` needs at least one prompt; got a batch of 0 (prompts of shape {tuple(prompts.shape)})."
            )


@dataclass
class CRSMDeliberationOutput(ModelOutput):
    """
    Args:
        sequences (`torch.LongTensor` of shape `(batch_size, prompt_length + generated)`): prompts and
            the committed tokens (rows that stopped early are padded with `pad_token_id`).
        chosen_visit_counts (`torch.LongTensor` of shape `(batch_size, generated)`): visits of the
            committed token's node when it was chosen (0 after a row stopped).
        chosen_values (`torch.FloatTensor` of shape `(batch_size, generated)`): its mean backed-up
            value `Q` (NaN after a row stopped).
        root_values (`torch.FloatTensor` of shape `(batch_size, generated)`): the value head's
            estimate of the state the search started from.
        search_stats (`list[list[dict]]`): per row, per committed token: `token`, `visits`, `q`,
            `prior` and `children` (a list of `(token, visits, q, prior)` for every expanded child).
        search_trees (`list[dict]`): per row, the search behind its last committed token: the root
            (`token`: the token it follows) and, nested under `children`, every node the search expanded,
            each a dict of `token`, `visits`, `q`, `prior`, `terminal` and `children`.
    """

    sequences: Optional[torch.LongTensor] = None
    chosen_visit_counts: Optional[torch.LongTensor] = None
    chosen_values: Optional[torch.FloatTensor] = None
    root_values: Optional[torch.FloatTensor] = None
    search_stats: Optional[list] = None
    search_trees: Optional[list] = None


@dataclass(eq=False)
class _Node:
    token: int
    prior: float
    state: Optional[CRSMCacheState] = None  # recurrent state after `token`; None until evaluated
    summary: Optional[torch.Tensor] = None
    value: float = 0.0  # the leaf estimate used when the node was evaluated
    actions: list = field(default_factory=list)  # candidate next tokens (top-k of the LM)
    priors: list = field(default_factory=list)
    children: dict = field(default_factory=dict)
    visits: int = 0
    value_sum: float = 0.0
    terminal: bool = False
    sequence: tuple = ()  # the tokens generated from the prompt to this node (for `logits_processor`)

    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else self.value


def _search_tree(root: _Node) -> dict:
    """`root` and every expanded node under it as nested dicts (children by decreasing visits). Built with a
    stack, not recursion: with `top_k_expansion=1` the tree is a chain as deep as the simulations."""

    def record(node: _Node) -> dict:
        return {
            "token": node.token,
            "visits": node.visits,
            "q": node.q(),
            "prior": node.prior,
            "terminal": node.terminal,
            "children": [],
        }

    tree = record(root)
    stack = [(root, tree)]
    while stack:
        node, entry = stack.pop()
        for child in sorted(node.children.values(), key=lambda c: (-c.visits, -c.prior)):
            entry["children"].append(record(child))
            stack.append((child, entry["children"][-1]))
    return tree


def _select_action(node: _Node, c_puct: float) -> tuple[int, float]:
    """PUCT; an unvisited child is scored with its parent's value (first-play urgency)."""
    sqrt_n = math.sqrt(max(node.visits, 1))
    best, best_score, best_prior = None, -math.inf, 0.0
    # Candidates are in descending prior order and the comparison is strict, so ties go to the
    # higher prior: with one simulation the search expands exactly the greedy token.
    for action, prior in zip(node.actions, node.priors):
        child = node.children.get(action)
        n, q = (child.visits, child.q()) if child is not None else (0, node.value)
        score = q + c_puct * prior * sqrt_n / (1 + n)
        if score > best_score:
            best, best_score, best_prior = action, score, prior
    return best, best_prior


def _set_candidates(node: _Node, logits: torch.Tensor, top_k: int) -> None:
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, min(top_k, probs.shape[-1]))
    # Tokens a logits processor masked (-inf, probability 0) are never candidates: PUCT would
    # still visit a zero-prior child once through its first-play value.
    keep = top.values > 0
    values, indices = top.values[keep], top.indices[keep]
    mass = values.sum().item()
    node.actions = indices.tolist()
    node.priors = [p / mass for p in values.tolist()]


@torch.no_grad()
def latent_rollout_values(model, summary: torch.Tensor, logits: torch.Tensor, top_k: int, depth: int) -> torch.Tensor:
    """The `"dynamics"` leaf value `(n,)` of states with `summary` `(n, S)` and next-token `logits` `(n, V)`.

    Branch `j` of leaf `i` starts with the leaf's `j`-th most likely token and takes `depth - 1`
    more latent steps, each with the candidate (of the leaf's top-k) that the value head rates
    best after it; the branches' final values are averaged with the LM's renormalised priors.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    top = torch.topk(probs, min(top_k, probs.shape[-1]))
    n, k = top.indices.shape
    branch = model.predict_next_summary(summary.repeat_interleave(k, dim=0), top.indices.reshape(-1))  # (n*k, S)
    candidates = top.indices.repeat_interleave(k, dim=0)  # (n*k, k): every branch keeps its leaf's candidates
    for _ in range(depth - 1):
        tries = model.predict_next_summary(branch.repeat_interleave(k, dim=0), candidates.reshape(-1)).view(
            n * k, k, -1
        )
        best = model.predict_value(tries.flatten(0, 1)).view(n * k, k).argmax(-1)
        branch = tries[torch.arange(n * k, device=tries.device), best]
    values = model.predict_value(branch).view(n, k)
    return (values * top.values).sum(-1) / top.values.sum(-1)


@torch.no_grad()
def _evaluate(
    model, requests: list[tuple[_Node, int, _Node]], rollout: str, rollout_depth: int, top_k: int, eos: set, constrain
):
    """One batched backbone step for every (parent, action, child) request; fills the children.

    `constrain(sequence, logits)`, when given, processes one child's next-token logits (a grammar's
    mask) before they become its priors and its rollout's candidates."""
    config = model.config
    device = model.device
    state = CRSMCacheState.cat([parent.state for parent, _, _ in requests])
    cache = CRSMCache.from_state(config, state)
    tokens = torch.tensor([[action] for _, action, _ in requests], device=device)
    # Any position >= conv_kernel - 1 selects Mamba's single-token decode path.
    position = torch.tensor([config.conv_kernel], device=device)
    out = model(input_ids=tokens, cache_params=cache, cache_position=position, use_cache=True)
    logits = out.logits[:, -1]
    for parent, action, child in requests:
        child.sequence = parent.sequence + (action,)
    if constrain is not None:
        logits = torch.stack([constrain(child.sequence, logits[i]) for i, (_, _, child) in enumerate(requests)])
    summary, _ = model.summarize(cache)
    values = model.predict_value(summary)
    if rollout == "dynamics":
        values = latent_rollout_values(model, summary, logits, top_k, rollout_depth)
    elif rollout == "model":
        roll_cache = CRSMCache.from_state(config, cache.snapshot())
        next_tokens = logits.argmax(-1, keepdim=True)
        for _ in range(rollout_depth):
            roll = model(input_ids=next_tokens, cache_params=roll_cache, cache_position=position, use_cache=True)
            next_tokens = roll.logits[:, -1].argmax(-1, keepdim=True)
        values = model.predict_value(model.summarize(roll_cache)[0])
    snapshot = cache.snapshot()
    for i, (_, action, child) in enumerate(requests):
        child.state = snapshot.index_select(torch.tensor([i], device=device))
        child.summary = summary[i : i + 1]
        child.value = float(values[i])
        child.terminal = action in eos
        _set_candidates(child, logits[i], top_k)


def _search(model, root: _Node, config: CRSMDeliberationConfig, eos: set, constrain=None) -> None:
    done = 0
    while done < config.num_simulations:
        wave = min(config.leaf_batch_size, config.num_simulations - done)
        requests, paths = [], []
        for _ in range(wave):
            node, path = root, [root]
            while True:
                if node.terminal or node.state is None:
                    break  # a finished sequence, or a leaf already queued in this wave
                action, prior = _select_action(node, config.c_puct)
                child = node.children.get(action)
                if child is None:
                    child = node.children[action] = _Node(token=action, prior=prior)
                    requests.append((node, action, child))
                    path.append(child)
                    break
                node = child
                path.append(child)
            for visited in path:  # virtual loss: the visit is counted now, its value on back-up
                visited.visits += 1
            paths.append(path)
        if requests:
            _evaluate(model, requests, config.rollout, config.rollout_depth, config.top_k_expansion, eos, constrain)
        for path in paths:
            value = path[-1].value
            for visited in path:
                visited.value_sum += value
        done += wave


def _deliberation_config(config: Optional[CRSMDeliberationConfig], kwargs: dict) -> CRSMDeliberationConfig:
    """The search settings from a config or from `generate`'s keyword arguments (not both); other
    arguments `generate` may pass along are accepted only when they change nothing."""
    names = {f.name for f in fields(CRSMDeliberationConfig)}
    settings = {k: v for k, v in kwargs.items() if k in names}
    unsupported = sorted(
        k for k, v in kwargs.items() if k not in names and v is not None and k not in ("use_cache", "do_sample")
    )
    if unsupported or kwargs.get("do_sample"):
        raise ValueError(
            f"generate(deliberation='mcts') does not take {unsupported or ['do_sample=True']}; it takes "
            f"max_new_tokens, {', '.join(sorted(names))}, deliberation_config, eos_token_id, pad_token_id, "
            "attention_mask, return_dict_in_generate, streamer"
        )
    if config is not None and settings:
        raise ValueError(
            f"Pass the search settings either in `deliberation_config` or as arguments, not both: {sorted(settings)}"
        )
    if config is not None and not isinstance(config, CRSMDeliberationConfig):
        raise ValueError(f"`deliberation_config` must be a CRSMDeliberationConfig, got {type(config).__name__}")
    return config if config is not None else CRSMDeliberationConfig(**settings)


def _special_tokens(model, gen_config, eos_token_id, pad_token_id) -> tuple[set, int]:
    """The end-of-sequence ids and the padding id: the arguments, else the generation config's, else
    the model config's (padding falls back to the smallest end-of-sequence id, then 0)."""
    if eos_token_id is None:
        eos_token_id = gen_config.eos_token_id if gen_config.eos_token_id is not None else model.config.eos_token_id
    eos = set(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id]) - {None}
    if pad_token_id is None:
        pad_token_id = gen_config.pad_token_id if gen_config.pad_token_id is not None else model.config.pad_token_id
    if pad_token_id is None:
        pad_token_id = min(eos) if eos else 0
    return eos, pad_token_id


def _constrainer(logits_processor, prompt: torch.Tensor):
    """`(sequence, logits) -> processed logits` for one node, or None without processors."""
    if not logits_processor:
        return None

    def constrain(sequence: tuple, logits: torch.Tensor) -> torch.Tensor:
        input_ids = torch.cat([prompt, torch.tensor(sequence, dtype=prompt.dtype, device=prompt.device)])[None]
        scores = logits[None]
        for processor in logits_processor:
            scores = processor(input_ids, scores)
        return scores[0]

    return constrain


@torch.no_grad()
def mcts_generate(
    model,
    input_ids: torch.LongTensor,
    attention_mask: Optional[torch.LongTensor] = None,
    max_new_tokens: Optional[int] = None,
    deliberation_config: Optional[CRSMDeliberationConfig] = None,
    eos_token_id=None,
    pad_token_id: Optional[int] = None,
    return_dict_in_generate: bool = False,
    generation_config=None,
    streamer=None,
    logits_processor=None,
    **kwargs,
):
    """Deliberate decoding with MCTS; called by `CRSMForCausalLM.generate(..., deliberation="mcts")`.

    Args:
        input_ids (`torch.LongTensor` of shape `(batch_size, prompt_length)`): prompts (left padding
            is removed with `attention_mask`; each row is searched separately).
        max_new_tokens (`int`, *optional*): tokens to generate; defaults to the generation config's.
        deliberation_config ([`CRSMDeliberationConfig`], *optional*): how to search; its fields can
            instead be given one by one as keyword arguments (`num_simulations=32, rollout="model"`).
        eos_token_id (`int` or `list[int]`, *optional*): stops a row; defaults to the model's.
        return_dict_in_generate (`bool`, defaults to `False`): return a [`CRSMDeliberationOutput`]
            with the search statistics instead of the sequences alone.
        streamer (`transformers.generation.BaseStreamer`, *optional*): receives the prompt, then
            each token as soon as it is committed, then `end()` (batch size 1 only, as in
            transformers). With `generate` in a thread the search for the next token runs while
            the consumer handles the current one (see the module docstring).
        logits_processor (`list` of `LogitsProcessor`, *optional*): applied, in order, to the logits of
            every node (with `input_ids` = the prompt and the node's tokens) before they become its
            priors: a grammar's mask keeps every candidate, hence every committed token, inside the
            grammar. The `"model"` rollout's greedy look-ahead reads the raw logits (it only
            estimates a value).
    """
    config = _deliberation_config(deliberation_config, kwargs)
    gen_config = generation_config or model.generation_config
    if max_new_tokens is None:
        max_new_tokens = gen_config.max_new_tokens if gen_config.max_new_tokens is not None else 20
    _check_positive_int("max_new_tokens", max_new_tokens)
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` must have shape (batch_size, prompt_length), got {tuple(input_ids.shape)}")
    check_prompt_batch(input_ids=input_ids)
    # The whole batch at once: the search runs row by row, and an error names the id's own position.
    input_ids = check_ids(input_ids, "input_ids", model.config.vocab_size, "vocab_size")
    if streamer is not None and input_ids.shape[0] != 1:
        raise ValueError(f"`streamer` needs a batch size of 1, got input_ids of shape {tuple(input_ids.shape)}")
    eos, pad_token_id = _special_tokens(model, gen_config, eos_token_id, pad_token_id)
    delta_mode = config.state_delta_mode

    was_training = model.training
    model.eval()
    rows, stats_rows, trees = [], [], []
    shape = (input_ids.shape[0], max_new_tokens)
    chosen_visits = torch.zeros(shape, dtype=torch.long)
    chosen_values = torch.full(shape, float("nan"))
    root_values = torch.full(shape, float("nan"))
    for b in range(input_ids.shape[0]):
        prompt = input_ids[b]
        if attention_mask is not None:
            prompt = prompt[attention_mask[b].bool()]
        if streamer is not None:
            streamer.put(prompt[None].cpu())
        out = model(input_ids=prompt[None], use_cache=True)
        if delta_mode is not None:
            model.apply_state_delta(out.cache_params)
        root = _Node(token=int(prompt[-1]), prior=1.0, state=out.cache_params.snapshot())
        root.summary, _ = model.summarize(out.cache_params)
        root.value = float(model.predict_value(root.summary)[0])
        constrain = _constrainer(logits_processor, prompt)
        # The prompt's logits were computed before the correction, which acts from the next step on.
        root_logits = out.logits[0, -1]
        _set_candidates(root, constrain((), root_logits) if constrain else root_logits, config.top_k_expansion)
        generated, stats = [], []
        for t in range(max_new_tokens):
            _search(model, root, config, eos, constrain)
            # Most visits wins; ties go to the higher prior (so one simulation is greedy).
            chosen = max(root.children.values(), key=lambda c: (c.visits, c.prior))
            stats.append(
                {
                    "token": chosen.token,
                    "visits": chosen.visits,
                    "q": chosen.q(),
                    "prior": chosen.prior,
                    "children": [(c.token, c.visits, c.q(), c.prior) for c in root.children.values()],
                }
            )
            chosen_visits[b, t], chosen_values[b, t], root_values[b, t] = chosen.visits, chosen.q(), root.value
            if chosen.terminal or t == max_new_tokens - 1:
                # Read before the state correction below clears the chosen child's subtree.
                trees.append(_search_tree(root))
            generated.append(chosen.token)
            if streamer is not None:
                streamer.put(torch.tensor([chosen.token]))
            if chosen.terminal:
                break
            if delta_mode == "token":
                cache = CRSMCache.from_state(model.config, chosen.state)
                model.apply_state_delta(cache, chosen.summary)
                chosen.state = cache.snapshot()
                chosen.summary, _ = model.summarize(cache)
                # A fresh search from the corrected state: the old subtree and its statistics were
                # computed from the uncorrected one.
                chosen.value = float(model.predict_value(chosen.summary)[0])
                chosen.children, chosen.visits, chosen.value_sum = {}, 0, 0.0
            root = chosen
        rows.append(torch.cat([prompt.cpu(), torch.tensor(generated, dtype=prompt.dtype)]))
        stats_rows.append(stats)
    if streamer is not None:
        streamer.end()
    if was_training:
        model.train()
    # The prompts keep their (left-padded) columns; generated tokens start at column prompt_len.
    prompt_len = input_ids.shape[1]
    sequences = torch.full((len(rows), prompt_len + max_new_tokens), pad_token_id, dtype=input_ids.dtype)
    for b, row in enumerate(rows):
        n_prompt = int(attention_mask[b].sum()) if attention_mask is not None else prompt_len
        sequences[b, prompt_len - n_prompt : prompt_len - n_prompt + len(row)] = row
    # Trim columns no row reached (as generate does when every row stopped early).
    longest = max(
        prompt_len - (int(attention_mask[b].sum()) if attention_mask is not None else prompt_len) + len(r)
        for b, r in enumerate(rows)
    )
    sequences = sequences[:, :longest].to(input_ids.device)
    generated_len = longest - prompt_len
    if not return_dict_in_generate:
        return sequences
    return CRSMDeliberationOutput(
        sequences=sequences,
        chosen_visit_counts=chosen_visits[:, :generated_len],
        chosen_values=chosen_values[:, :generated_len],
        root_values=root_values[:, :generated_len],
        search_stats=stats_rows,
        search_trees=trees,
    )
