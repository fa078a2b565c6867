"""`solve()`: greedy, self-consistency, tree-of-thought beam search and MCTS over reasoning steps.

A step is what the model writes up to a delimiter (a line by default). Every method runs on one
`LMStepper` (hf_reason/reasoning/backends.py), so all of them share the cache reuse (a branch
starts from a copy of its parent's cache) and the same cost accounting: generated tokens count
every sampled token in every branch, kept or not; model calls count forward passes; scorer calls
count batched scorer invocations. The token budget caps the generated tokens per problem.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from .backends import CostMeter, LMState, LMStepper, model_device, stepping_model
from .scorers import ReasoningTask, StepScorer


__all__ = ["METHODS", "SearchConfig", "SolveResult", "solve"]

METHODS = ("greedy", "self_consistency", "beam", "mcts", "token_mcts")


@dataclass
class SearchConfig:
    """How `solve` searches; every field can be passed to `solve` as a keyword argument.

    Args:
        max_new_tokens (`int`, defaults to 128): longest single completion (one path), in tokens.
        token_budget (`int`, *optional*): most generated tokens per problem over all branches and
            samples (None: no cap beyond the method's own sizes). Search stops when it is spent.
            `token_mcts` commits one token per search, so there it caps the committed tokens; its
            simulations show in `model_calls`.
        max_steps (`int`, defaults to 8): deepest path, in steps; the step at this depth is final.
        max_step_tokens (`int`, defaults to 32): a step is cut after this many tokens.
        step_delimiter (`str`, defaults to ``"\\n"``): what ends a step.
        temperature (`float`, defaults to 1.0): sampling temperature of samples and expansions (> 0).
        num_samples (`int`, defaults to 8): self-consistency's samples.
        beam_width (`int`, defaults to 2): beam: nodes expanded per round (the best of the frontier).
        expansions (`int`, defaults to 3): beam and MCTS: steps sampled per expanded node.
        num_simulations (`int`, defaults to 16): MCTS: selection-expansion-backup rounds.
        c_puct (`float`, defaults to 1.0): MCTS: weight of the prior (the step's model probability).
        accept_score (`float`, defaults to 1.0): a final step scoring at least this ends the search.
        prune_score (`float`, defaults to 0.0): a node scoring at most this is never expanded.
        max_backtracks (`int`, defaults to 4): beam: how often a dry frontier is refilled with the
            expanded nodes still alive (sampled again for new steps).
        seed (`int`, defaults to 0): seeds the sampling of each problem (problem i uses seed + i).
        deliberation (`dict`, *optional*): `token_mcts`: keyword arguments of CRSM's
            `generate(deliberation="mcts", ...)` (e.g. ``{"num_simulations": 4}``); None uses the
            model's saved `generation_config.deliberation` (written by a sweep), else CRSM's defaults.
    """

    max_new_tokens: int = 128
    token_budget: Optional[int] = None
    max_steps: int = 8
    max_step_tokens: int = 32
    step_delimiter: str = "\n"
    temperature: float = 1.0
    num_samples: int = 8
    beam_width: int = 2
    expansions: int = 3
    num_simulations: int = 16
    c_puct: float = 1.0
    accept_score: float = 1.0
    prune_score: float = 0.0
    max_backtracks: int = 4
    seed: int = 0
    deliberation: Optional[dict] = None

    def __post_init__(self):
        for name in ("max_new_tokens", "max_steps", "max_step_tokens", "num_samples", "beam_width", "expansions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be an int >= 1, got {value!r}")
        if not isinstance(self.num_simulations, int) or self.num_simulations < 1:
            raise ValueError(f"`num_simulations` must be an int >= 1, got {self.num_simulations!r}")
        if self.token_budget is not None and (not isinstance(self.token_budget, int) or self.token_budget < 1):
            raise ValueError(f"`token_budget` must be None or an int >= 1, got {self.token_budget!r}")
        if not self.temperature > 0:
            raise ValueError(f"`temperature` must be > 0 (greedy is method='greedy'), got {self.temperature!r}")
        if self.c_puct < 0:
            raise ValueError(f"`c_puct` must be >= 0, got {self.c_puct!r}")
        if not self.step_delimiter:
            raise ValueError("`step_delimiter` must be a non-empty string")


@dataclass
class SolveResult:
    """One problem's outcome.

    Args:
        prompt (`str`): the problem.
        completion (`str`): the chosen solution's text (steps joined with the delimiter).
        answer (`str`, *optional*): the task's answer read from `completion`.
        correct (`bool`, *optional*): exact correctness against the reference (None without references).
        score (`float`, *optional*): the scorer's score of the chosen solution.
        agreement (`float`, *optional*): self-consistency: the winning answer's share of the votes.
        votes (`dict`): self-consistency: answer key -> votes (majority) and weighted votes.
        cost (`dict`): generated_tokens, model_calls, scorer_calls, prompt_tokens, seconds.
        trace (`list[dict]`): the search: every scored node (steps, score, final) or every sample.
    """

    prompt: str
    completion: str
    answer: Optional[str] = None
    correct: Optional[bool] = None
    score: Optional[float] = None
    agreement: Optional[float] = None
    votes: dict = field(default_factory=dict)
    cost: dict = field(default_factory=dict)
    trace: list = field(default_factory=list)


@dataclass(eq=False)
class _Node:
    state: LMState
    steps: list
    logprob: float = 0.0
    num_tokens: int = 0
    final: bool = False
    score: float = 0.0
    prior: float = 1.0
    probability: float = 1.0
    visits: int = 0
    value_sum: float = 0.0
    children: list = field(default_factory=list)
    expanded: bool = False

    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


class _Search:
    """The shared machinery of one problem: stepping, budget, scoring, the trace."""

    def __init__(self, stepper: LMStepper, task: ReasoningTask, scorer, config: SearchConfig, prompt: str, seed: int):
        self.stepper, self.task, self.scorer, self.config, self.prompt = stepper, task, scorer, config, prompt
        self.meter = CostMeter()
        self.generator = torch.Generator(device=stepper.device).manual_seed(seed)
        self.trace: list = []
        self.root = _Node(stepper.prefill(prompt, self.meter), [])

    def remaining(self) -> int:
        if self.config.token_budget is None:
            return 1 << 30
        return self.config.token_budget - self.meter.generated_tokens

    def child(self, node: _Node, temperature: float) -> Optional[_Node]:
        """One sampled step from `node` (None when the budget is spent)."""
        path_left = self.config.max_new_tokens - node.num_tokens
        limit = min(self.remaining(), path_left)
        if limit <= 0:
            return None
        sample = self.stepper.sample_step(node.state, temperature, limit, self.generator, self.meter)
        text = (
            sample.text.split(self.config.step_delimiter)[0]
            if self.config.step_delimiter in sample.text
            else sample.text
        )
        steps = node.steps + [text]
        num_tokens = node.num_tokens + len(sample.token_ids)
        final = (
            sample.ended_with_eos
            or self.task.is_final_step(text)
            or len(steps) >= self.config.max_steps
            or num_tokens >= self.config.max_new_tokens
        )
        return _Node(sample.state, steps, node.logprob + sample.logprob, num_tokens, final)

    def complete(self, node: _Node, temperature: float) -> _Node:
        """Steps from `node` until a final step or the budget (temperature 0: greedy)."""
        while not node.final:
            nxt = self.child(node, temperature)
            if nxt is None:
                break
            node = nxt
        return node

    def score(self, nodes: list) -> None:
        """Scores `nodes` in one scorer call; without a scorer, the model's own per-token confidence."""
        if not nodes:
            return
        if self.scorer is None:
            for n in nodes:
                n.score = math.exp(n.logprob / max(n.num_tokens, 1))
        else:
            scores = self.scorer([self.prompt] * len(nodes), [n.steps for n in nodes])
            self.meter.scorer_calls += 1
            for n, s in zip(nodes, scores):
                n.score = float(s)
        for n in nodes:
            self.trace.append({"steps": list(n.steps), "score": n.score, "final": n.final})

    def text(self, node: _Node) -> str:
        return self.config.step_delimiter.join(node.steps)

    def result(self, node: _Node, **extra) -> SolveResult:
        completion = self.text(node)
        return SolveResult(
            prompt=self.prompt,
            completion=completion,
            answer=self.task.extract_answer(self.prompt, completion),
            cost=self.meter.stop().as_dict(),
            trace=self.trace,
            **extra,
        )


def _greedy(search: _Search) -> SolveResult:
    node = search.complete(search.root, 0.0)
    return search.result(node)


def _self_consistency(search: _Search) -> SolveResult:
    cfg, task = search.config, search.task
    samples = []
    for _ in range(cfg.num_samples):
        if search.remaining() <= 0:
            break
        # Every sample starts from the prompt's cache: the prompt is run once per problem, not once per sample.
        samples.append(search.complete(search.root, cfg.temperature))
    if search.scorer is not None:
        search.score(samples)
    else:
        search.trace.extend({"steps": list(n.steps), "final": n.final} for n in samples)
    votes, weighted, by_key = Counter(), defaultdict(float), {}
    for node in samples:
        answer = task.extract_answer(search.prompt, search.text(node))
        if answer is None:
            continue
        key = task.answer_key(answer)
        votes[key] += 1
        weighted[key] += node.score if search.scorer is not None else 1.0
        if key not in by_key or node.score > by_key[key].score:
            by_key[key] = node
    if not votes:
        chosen = samples[0] if samples else search.root
        return search.result(chosen, agreement=0.0, votes={})
    # Score-weighted vote when a scorer is given, plain majority otherwise; ties go to the earlier sample.
    tally = weighted if search.scorer is not None else votes
    best = max(tally, key=lambda k: (tally[k], votes[k]))
    agreement = votes[best] / len(samples)
    result = search.result(
        by_key[best], agreement=agreement, votes={"majority": dict(votes), "weighted": dict(weighted)}
    )
    result.score = by_key[best].score if search.scorer is not None else None
    return result


def _all_dead(node: _Node, config: SearchConfig) -> bool:
    return all(c.score <= config.prune_score and not c.final for c in node.children)


def _expand(search: _Search, node: _Node) -> list:
    """`expansions` sampled children added to `node`, identical step texts merged (their priors add up).

    Returns the new children; priors are renormalised over all of the node's children."""
    seen = {tuple(c.steps[-1:]): c for c in node.children}
    children = []
    for _ in range(search.config.expansions):
        child = search.child(node, search.config.temperature)
        if child is None:
            break
        key = tuple(child.steps[-1:])
        child.probability = math.exp(child.logprob - node.logprob)
        if key in seen:
            seen[key].probability += child.probability
            continue
        seen[key] = child
        children.append(child)
    search.score(children)
    node.children = node.children + children
    node.expanded = True
    total = sum(c.probability for c in node.children) or 1.0
    for c in node.children:
        c.prior = c.probability / total
    return children


def _best_final(finals: list) -> Optional[_Node]:
    return max(finals, key=lambda n: (n.score, n.logprob / max(n.num_tokens, 1))) if finals else None


def _beam(search: _Search) -> SolveResult:
    """Beam search with backtracking: each round expands the best `beam_width` open nodes of the whole frontier,
    so when the newest nodes all score low, older alternatives come back (best-first over the tree). When the
    frontier runs dry, the expanded nodes still alive are sampled again (at most `max_backtracks` times)."""
    cfg = search.config
    counter = itertools.count()
    search.root.score = 1.0
    frontier = [(-1.0, 0.0, next(counter), search.root)]
    expanded, finals, refills = [], [], 0
    while search.remaining() > 0:
        if not frontier:
            if refills >= cfg.max_backtracks or not expanded:
                break
            refills += 1
            frontier = list(expanded)
            heapq.heapify(frontier)
            expanded = []
        batch = [heapq.heappop(frontier) for _ in range(min(cfg.beam_width, len(frontier)))]
        expanded.extend(batch)
        accepted = False
        for *_, node in batch:
            for child in _expand(search, node):
                if child.final:
                    finals.append(child)
                    accepted |= child.score >= cfg.accept_score
                elif child.score > cfg.prune_score:
                    confidence = child.logprob / max(child.num_tokens, 1)
                    heapq.heappush(frontier, (-child.score, -confidence, next(counter), child))
        if accepted:
            break
    best = _best_final(finals)
    if best is None:
        best = frontier[0][3] if frontier else search.root
    return search.result(best, score=best.score)


def _puct(node: _Node, c_puct: float) -> _Node:
    sqrt_n = math.sqrt(max(node.visits, 1))
    return max(node.children, key=lambda c: c.q() + c_puct * c.prior * sqrt_n / (1 + c.visits))


def _mcts(search: _Search) -> SolveResult:
    """PUCT over steps: select by Q + c * P * sqrt(N) / (1 + n), expand a leaf into sampled steps (priors: their
    renormalised model probabilities), score the new children, back the best child score up the path."""
    cfg = search.config
    finals = []
    for _ in range(cfg.num_simulations):
        node, path = search.root, [search.root]
        while node.expanded and node.children and not node.final and not _all_dead(node, cfg):
            node = _puct(node, cfg.c_puct)
            path.append(node)
        if node.final or (node is not search.root and node.score <= cfg.prune_score):
            value = node.score
        else:
            if search.remaining() <= 0:
                break
            # A node whose children are all dead is widened with fresh samples instead of being given up.
            children = _expand(search, node)
            if not children:
                break
            for c in children:
                c.visits, c.value_sum = 1, c.score
                if c.final:
                    finals.append(c)
            value = max(c.score for c in children)
        for n in path:
            n.visits += 1
            n.value_sum += value
        if any(f.score >= cfg.accept_score for f in finals):
            break
    best = _best_final(finals)
    if best is None:
        # No final step yet: follow the most visited path, then finish it greedily within what is left.
        node = search.root
        while node.children:
            node = max(node.children, key=lambda c: (c.visits, c.q()))
        best = search.complete(node, 0.0)
        search.score([best])
    return search.result(best, score=best.score)


@torch.no_grad()
def _token_mcts(model, tokenizer, prompt: str, task: ReasoningTask, config: SearchConfig) -> SolveResult:
    """CRSM's token-level MCTS (`generate(deliberation="mcts")`); model calls count one per simulation per token."""
    # Without explicit settings, the ones a sweep saved with the model (`write_deliberation_defaults`).
    saved = getattr(getattr(model, "generation_config", None), "deliberation", None)
    options = dict(config.deliberation if config.deliberation is not None else saved or {})
    meter = CostMeter()
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model_device(stepping_model(model)))
    # The search commits one token per step, so the budget caps the committed tokens.
    max_new_tokens = min(config.max_new_tokens, config.token_budget or config.max_new_tokens)
    out = model.generate(
        ids,
        deliberation="mcts",
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **options,
    )
    committed = [int(t) for t in out[0, ids.shape[1] :]]
    # A row that stopped is padded after its EOS; the EOS itself was searched for and counts.
    if tokenizer.eos_token_id in committed:
        committed = committed[: committed.index(tokenizer.eos_token_id) + 1]
    new = [t for t in committed if t != tokenizer.eos_token_id]
    meter.generated_tokens = len(committed)
    meter.prompt_tokens = ids.shape[1]
    from ..models.crsm.mcts import CRSMDeliberationConfig

    simulations = int(options.get("num_simulations", CRSMDeliberationConfig.num_simulations))
    meter.model_calls = 1 + meter.generated_tokens * simulations
    completion = tokenizer.decode(new, skip_special_tokens=True)
    return SolveResult(
        prompt=prompt,
        completion=completion,
        answer=task.extract_answer(prompt, completion),
        cost=meter.stop().as_dict(),
    )


_METHODS = {"greedy": _greedy, "self_consistency": _self_consistency, "beam": _beam, "mcts": _mcts}


def solve(
    model,
    tokenizer,
    prompts: Sequence[str],
    method: str = "greedy",
    *,
    task: ReasoningTask,
    scorer: Optional[StepScorer] = None,
    references: Optional[Sequence[Any]] = None,
    config: Optional[SearchConfig] = None,
    **kwargs,
) -> list[SolveResult]:
    """Answers `prompts` with one inference-time reasoning method.

    Args:
        model: a PyTorch causal LM (any of the package's LMs or of `transformers`), or one of the
            package's ONNX Runtime wrappers (`ORTCRSMForCausalLM`, `ORTMetaAttentionForCausalLM`):
            every method runs on them through the same calls, the CRSM's value head and
            `token_mcts` included.
        tokenizer: its tokenizer (`eos_token_id` ends a completion).
        prompts (`Sequence[str]`): the problems, formatted as the model was trained on them.
        method (`str`, defaults to `"greedy"`): one of `METHODS`: `"greedy"`, `"self_consistency"`,
            `"beam"` (tree-of-thought beam search with backtracking), `"mcts"` (PUCT over steps),
            `"token_mcts"` (CRSM's token-level MCTS, CRSM only).
        task ([`ReasoningTask`]): how answers are read and checked (`countdown_task()`, `arithmetic_task()`).
        scorer ([`StepScorer`], *optional*): scores partial solutions for beam / MCTS and weights the
            self-consistency vote; None uses the model's own per-token confidence.
        references (`Sequence`, *optional*): per prompt, the reference answer for `task.is_correct`.
        config ([`SearchConfig`], *optional*): the search settings; `kwargs` override its fields.

    Returns:
        One [`SolveResult`] per prompt: the completion, the answer, its correctness (with
        `references`), the cost and the search trace.
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
    if isinstance(prompts, str):
        raise ValueError("`prompts` must be a sequence of strings, got a single string")
    if references is not None and len(references) != len(prompts):
        raise ValueError(f"`references` has {len(references)} entries for {len(prompts)} prompts")
    if config is None:
        config = SearchConfig(**kwargs)
    elif kwargs:
        config = SearchConfig(**{**config.__dict__, **kwargs})
    if method == "token_mcts" and not hasattr(stepping_model(model), "predict_value"):
        raise ValueError(f"method 'token_mcts' needs a CRSM model (with a value head), got {type(model).__name__}")
    stepper = LMStepper(model, tokenizer, config.step_delimiter, config.max_step_tokens)
    was_training = stepper.model.training
    stepper.model.eval()
    results = []
    try:
        for i, prompt in enumerate(prompts):
            if method == "token_mcts":
                result = _token_mcts(model, tokenizer, prompt, task, config)
            else:
                result = _METHODS[method](_Search(stepper, task, scorer, config, prompt, config.seed + i))
            if references is not None:
                result.correct = bool(task.is_correct(prompt, result.completion, references[i]))
            results.append(result)
    finally:
        stepper.model.train(was_training)
    return results
