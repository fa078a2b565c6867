"""Fine-tuning a CRSM's value head from search outcomes.

Monte-Carlo regression (examples/train_crsm.py) fits the value to the rewards of the model's own
samples. Here the value learns from what the search finds, as in AlphaZero's value target: each
round runs the search (`solve`, token-level MCTS by default) on training prompts, scores every
searched completion with the task's exact check and regresses the value at every prefix of it
towards that outcome, together with a few plain samples so the value also sees the failures the
search avoided. Only the value head (and the state aggregator that feeds it) learn; the language
model is frozen, so the policy the search uses does not move under it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Optional

import torch

from .scorers import ReasoningTask


__all__ = ["prefix_values", "train_value_from_search", "value_regression_step"]


def prefix_values(model, prompt_ids: torch.Tensor, continuations: torch.Tensor) -> torch.Tensor:
    """Value-head outputs `(T + 1, G)` after the prompt and after each of the `T` tokens of `G` continuations.

    Args:
        model: a `CRSMForCausalLM`.
        prompt_ids (`torch.Tensor` of shape `(1, P)`): the prompt, shared by every continuation (so no
            padding enters the recurrent state).
        continuations (`torch.Tensor` of shape `(G, T)`): the continuation tokens.

    The backbone runs without gradients; the summary and value keep theirs.
    """
    G, T = continuations.shape
    with torch.no_grad():
        out = model(input_ids=prompt_ids.expand(G, -1), use_cache=True)
        cache = out.cache_params
        states = [cache.stacked_ssm_states()]
        position = torch.tensor([model.config.conv_kernel], device=prompt_ids.device)
        for t in range(T):
            model(input_ids=continuations[:, t : t + 1], cache_params=cache, cache_position=position, use_cache=True)
            states.append(cache.stacked_ssm_states())
    states = torch.stack(states)  # (T + 1, G, layers, intermediate, state)
    summary, _ = model.summarize(states.flatten(0, 1))
    return model.predict_value(summary).view(T + 1, G)


def value_regression_step(
    model,
    tokenizer,
    prompt: str,
    completions: Sequence[str],
    rewards: Sequence[float],
    optimizer: torch.optim.Optimizer,
    max_tokens: int,
) -> float:
    """One optimizer step: the value at every prefix of each completion (EOS included) towards its reward.

    Args:
        model: a `CRSMForCausalLM`.
        tokenizer: its tokenizer.
        prompt (`str`): the problem.
        completions (`Sequence[str]`): completions of `prompt`.
        rewards (`Sequence[float]`): their outcomes, in [0, 1].
        optimizer (`torch.optim.Optimizer`): over the parameters that learn.
        max_tokens (`int`): completions are cut to this many tokens before their EOS.

    Returns:
        The mean squared error before the step.
    """
    if len(completions) != len(rewards) or not completions:
        raise ValueError(
            f"`completions` ({len(completions)}) and `rewards` ({len(rewards)}) must match and be non-empty"
        )
    device = next(model.parameters()).device
    prompt_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    encoded = [tokenizer(t).input_ids[:max_tokens] + [tokenizer.eos_token_id] for t in completions]
    width = max(len(e) for e in encoded)
    continuations = torch.full((len(encoded), width), tokenizer.eos_token_id, dtype=torch.long, device=device)
    for i, e in enumerate(encoded):
        continuations[i, : len(e)] = torch.tensor(e, device=device)
    lengths = torch.tensor([len(e) for e in encoded], device=device)
    values = prefix_values(model, prompt_ids, continuations)
    target = torch.tensor([float(r) for r in rewards], device=device)
    valid = (torch.arange(width + 1, device=device)[:, None] <= lengths[None, :]).float()
    loss = (((values - target[None, :]) ** 2) * valid).sum() / valid.sum()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _value_parameters(model) -> list:
    aggregator = getattr(model.backbone, "aggregator", None)
    heads = list(model.value_head.parameters())
    return heads + (list(aggregator.parameters()) if aggregator is not None else [])


def train_value_from_search(
    model,
    tokenizer,
    prompts: Sequence[str],
    task: ReasoningTask,
    *,
    rounds: int = 2,
    problems_per_round: Optional[int] = None,
    method: str = "token_mcts",
    samples_per_problem: int = 2,
    max_new_tokens: int = 64,
    learning_rate: float = 1e-3,
    optimizer: Optional[torch.optim.Optimizer] = None,
    references: Optional[Sequence] = None,
    seed: int = 0,
    **search_kwargs,
) -> dict:
    """Rounds of search on `prompts`, each followed by value regression on the searched outcomes.

    Args:
        model: a `CRSMForCausalLM` (it needs `value_head`, `summarize` and `predict_value`).
        tokenizer: its tokenizer.
        prompts (`Sequence[str]`): training problems (never the evaluation split).
        task ([`ReasoningTask`]): reads and checks answers (`task.is_correct` is the outcome).
        rounds (`int`, defaults to 2): search-then-learn rounds.
        problems_per_round (`int`, *optional*): problems drawn per round (default: all of `prompts`).
        method (`str`, defaults to `"token_mcts"`): the `solve` method whose outcomes teach the value.
        samples_per_problem (`int`, defaults to 2): plain samples added per problem (their outcomes too).
        max_new_tokens (`int`, defaults to 64): longest completion, searched or sampled.
        learning_rate (`float`, defaults to 1e-3): AdamW's, when no `optimizer` is given.
        optimizer (`torch.optim.Optimizer`, *optional*): over the value parameters.
        references (`Sequence`, *optional*): per prompt, the reference for `task.is_correct`.
        seed (`int`, defaults to 0): draws the problems and seeds the samples.
        search_kwargs: further `solve` settings (e.g. ``deliberation={"num_simulations": 8}``).

    Returns:
        `{"solve_rate": [...], "loss": [...]}`: per round the share of problems the search solved,
        per optimizer step the loss before it. The model is left in eval mode, every parameter
        trainable again.
    """
    from .search import solve

    if not hasattr(model, "predict_value"):
        raise ValueError(f"`model` must have a value head (a CRSM), got {type(model).__name__}")
    if rounds < 1 or samples_per_problem < 0:
        raise ValueError(f"`rounds` must be >= 1 and `samples_per_problem` >= 0, got {rounds}, {samples_per_problem}")
    if references is not None and len(references) != len(prompts):
        raise ValueError(f"`references` has {len(references)} entries for {len(prompts)} prompts")
    learned = _value_parameters(model)
    learned_ids = {id(p) for p in learned}
    for p in model.parameters():
        p.requires_grad_(id(p) in learned_ids)
    if optimizer is None:
        optimizer = torch.optim.AdamW(learned, lr=learning_rate)
    rng = random.Random(seed)
    per_round = len(prompts) if problems_per_round is None else min(problems_per_round, len(prompts))
    history = {"solve_rate": [], "loss": []}
    device = next(model.parameters()).device
    try:
        for round_index in range(rounds):
            chosen = rng.sample(range(len(prompts)), per_round)
            picked = [prompts[i] for i in chosen]
            refs = [None if references is None else references[i] for i in chosen]
            model.eval()
            searched = solve(
                model,
                tokenizer,
                picked,
                method,
                task=task,
                references=refs,
                max_new_tokens=max_new_tokens,
                seed=seed + round_index * len(prompts),
                **search_kwargs,
            )
            history["solve_rate"].append(sum(bool(r.correct) for r in searched) / len(searched))
            for prompt, reference, result in zip(picked, refs, searched):
                completions, rewards = [result.completion], [float(bool(result.correct))]
                if samples_per_problem:
                    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
                    torch.manual_seed(rng.randrange(2**31))
                    with torch.no_grad():
                        sampled = model.generate(
                            ids,
                            do_sample=True,
                            num_return_sequences=samples_per_problem,
                            max_new_tokens=max_new_tokens,
                            pad_token_id=tokenizer.pad_token_id,
                        )
                    for row in sampled:
                        text = tokenizer.decode(row[ids.shape[1] :], skip_special_tokens=True)
                        completions.append(text)
                        rewards.append(float(bool(task.is_correct(prompt, text, reference))))
                history["loss"].append(
                    value_regression_step(model, tokenizer, prompt, completions, rewards, optimizer, max_new_tokens)
                )
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
        model.eval()
    return history
