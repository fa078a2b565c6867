"""A sweep of CRSM's MCTS settings with optuna (optional extra ``hf-reason[sweep]``), on validation problems only.

The best setting is written into the model's generation config (``generation_config.deliberation``),
so it is saved with the model and `solve(..., method="token_mcts")` uses it when no settings are
passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from .scorers import ReasoningTask
from .search import solve


__all__ = ["DELIBERATION_KEY", "sweep_deliberation", "write_deliberation_defaults"]

DELIBERATION_KEY = "deliberation"


def write_deliberation_defaults(model, settings: dict) -> None:
    """Stores `settings` (fields of `CRSMDeliberationConfig`) as ``model.generation_config.deliberation``;
    `save_pretrained` writes it to generation_config.json."""
    from ..models.crsm.mcts import CRSMDeliberationConfig

    CRSMDeliberationConfig(**settings)  # fails here, naming the field, rather than at generation time
    setattr(model.generation_config, DELIBERATION_KEY, dict(settings))
    # A config marked as derived from the model config is rebuilt from it on load, which would drop the setting.
    model.generation_config._from_model_config = False


def sweep_deliberation(
    model,
    tokenizer,
    prompts: Sequence[str],
    references: Sequence[Any],
    task: ReasoningTask,
    n_trials: int = 20,
    max_simulations: int = 8,
    max_new_tokens: int = 64,
    seed: int = 0,
    write: bool = True,
) -> dict:
    """Searches `c_puct`, `num_simulations`, `top_k_expansion` (and `delta_damping` with `apply_state_delta`)
    for the best accuracy of token-level MCTS on `prompts` (a validation split), ties broken by fewer simulations.

    Args:
        model: a `CRSMForCausalLM`.
        tokenizer: its tokenizer.
        prompts / references: validation problems and their references (never the test split).
        task ([`ReasoningTask`]): how answers are checked.
        n_trials (`int`, defaults to 20): optuna trials (TPE sampler, seeded).
        max_simulations (`int`, defaults to 8): the largest `num_simulations` tried (the compute cap).
        max_new_tokens (`int`, defaults to 64): generation length.
        seed (`int`, defaults to 0): the sampler's seed.
        write (`bool`, defaults to True): write the best setting with `write_deliberation_defaults`.

    Returns:
        ``{"best": settings, "accuracy": validation accuracy, "trials": [(settings, accuracy), ...]}``.
    """
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("the sweep needs optuna: `pip install 'hf-reason[sweep]'`") from exc
    if n_trials < 1 or max_simulations < 1:
        raise ValueError(f"`n_trials` and `max_simulations` must be >= 1, got {n_trials}, {max_simulations}")
    original_damping = model.config.delta_damping
    trials: list = []

    def objective(trial) -> float:
        settings = {
            "c_puct": trial.suggest_float("c_puct", 0.25, 4.0, log=True),
            "num_simulations": trial.suggest_int("num_simulations", 1, max_simulations),
            "top_k_expansion": trial.suggest_int("top_k_expansion", 2, 8),
            "apply_state_delta": trial.suggest_categorical("apply_state_delta", [False, True]),
        }
        if settings["apply_state_delta"]:
            model.config.delta_damping = trial.suggest_float("delta_damping", 0.0, 1.0)
        try:
            results = solve(
                model,
                tokenizer,
                prompts,
                "token_mcts",
                task=task,
                references=references,
                max_new_tokens=max_new_tokens,
                deliberation=settings,
            )
        finally:
            damping = model.config.delta_damping
            model.config.delta_damping = original_damping
        accuracy = sum(bool(r.correct) for r in results) / len(results)
        if settings["apply_state_delta"]:
            settings["delta_damping"] = damping
        trials.append((settings, accuracy))
        # Ties go to the cheaper search.
        return accuracy - 1e-4 * settings["num_simulations"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    best_settings, best_accuracy = max(trials, key=lambda t: (t[1], -t[0]["num_simulations"]))
    best: Optional[dict] = {k: v for k, v in best_settings.items() if k != "delta_damping"}
    if write:
        if "delta_damping" in best_settings:
            model.config.delta_damping = best_settings["delta_damping"]
        write_deliberation_defaults(model, best)
    return {"best": best_settings, "accuracy": best_accuracy, "trials": trials}
