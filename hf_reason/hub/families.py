# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The model families hf-reason writes cards for: each family's card template, Hub task and tags.

A new family needs a template in `model_cards/` and an entry in `FAMILIES`; the card builders and
the upload are generic over `config.model_type`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass(frozen=True)
class Family:
    """What a model family's card needs beyond its config: template, Hub task and tags.

    Args:
        template: file name of the family's card template in `hf_reason.model_cards`.
        summary: the card's one-paragraph description, unless the caller gives `model_summary`.
        task_type: Hub task id of the family's evaluation results (`model-index`).
        task_name: human-readable task name shown with those results.
        tags: Hub tags every card of the family carries.
        pipeline_tag: Hub pipeline tag (the inference widget), or None for no widget.
        module: the hf-reason module that exports the family's classes (defaults to
            `hf_reason.models.<model_type>`).
    """

    template: str
    summary: str
    task_type: str
    task_name: str
    tags: tuple[str, ...]
    pipeline_tag: Optional[str] = None
    module: Optional[str] = None


FAMILIES: dict[str, Family] = {
    "trm": Family(
        template="trm.md",
        summary="A Tiny Recursive Model (TRM) that solves grid puzzles by recursive refinement with learned halting.",
        # transformers has no puzzle task; the checkpoint's trust_remote_code class is a token classifier.
        task_type="token-classification",
        task_name="Grid puzzle solving (one class per cell)",
        tags=("trm", "recursive-reasoning", "puzzle-solving"),
        # No pipeline tag: the Hub's token-classification widget would feed it text, not grids.
        pipeline_tag=None,
    ),
    "crsm": Family(
        template="crsm.md",
        summary="A Continuous Reasoning State Model (CRSM): a Mamba language model that deliberates with MCTS "
        "over its own recurrent state.",
        task_type="text-generation",
        task_name="Text generation",
        tags=("crsm", "mamba", "mcts", "reasoning"),
        pipeline_tag="text-generation",
    ),
    "meta_attention": Family(
        template="meta_attention.md",
        summary="A GPT-2 language model with meta-attention over its own attention maps, for grounded "
        "introspective reasoning reports.",
        task_type="text-generation",
        task_name="Text generation",
        tags=("gpt2", "meta-attention", "introspection", "reasoning"),
        pipeline_tag="text-generation",
    ),
    "quantile_reward_model": Family(
        template="reward_model.md",
        summary="A multi-attribute quantile reward model: per attribute, a set of predicted quantiles of its score "
        "(ordered by construction, trained with the pinball loss), "
        "and a configurable risk-aware scalar reward.",
        task_type="text-classification",
        task_name="Reward modelling (sequence scoring)",
        tags=("reward-model", "quantile-regression", "trl"),
        pipeline_tag=None,
        module="hf_reason.reward_models",
    ),
    "branch_rethink_reward_model": Family(
        template="reward_model.md",
        summary="A branch-and-rethink reward model (BR-RM): one causal LM that first names the attributes of a "
        "response most at risk (adaptive branching), then scores the response conditioned on them (rethinking).",
        task_type="text-classification",
        task_name="Reward modelling (two-turn scoring)",
        tags=("reward-model", "branch-and-rethink", "trl"),
        pipeline_tag=None,
        module="hf_reason.reward_models",
    ),
    "hierarchical_reward_model": Family(
        template="reward_model.md",
        summary="A hierarchical reward model: a process head scoring each reasoning step's soundness and an "
        "outcome head scoring the response end to end, combined with a documented weighting.",
        task_type="text-classification",
        task_name="Reward modelling (step and outcome scoring)",
        tags=("reward-model", "process-reward-model", "trl"),
        pipeline_tag=None,
        module="hf_reason.reward_models",
    ),
}
ADAPTER_TEMPLATE = "adapter.md"
TOKENIZER_TEMPLATE = "tokenizer.md"
BASE_TAGS = ("hf-reason",)


def template_path(name: str) -> Path:
    """Path of a card template shipped in the package (`hf_reason.model_cards`)."""
    from importlib.resources import files

    path = Path(str(files("hf_reason.model_cards") / name))
    if not path.is_file():
        raise FileNotFoundError(f"Model card template {name!r} is missing from hf_reason.model_cards ({path}).")
    return path


def family_for(model_type: str) -> Family:
    """The `Family` of a `config.model_type`; a `ValueError` naming the known families otherwise."""
    if model_type not in FAMILIES:
        raise ValueError(
            f"`model_type` must be one of {', '.join(repr(k) for k in FAMILIES)} to build an hf-reason model card; "
            f"got {model_type!r}."
        )
    return FAMILIES[model_type]
