"""Configuration of the branch-and-rethink reward model (BR-RM)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

from transformers import AutoConfig, PretrainedConfig

from .configuration_quantile_rm import backbone_config_from


NO_RISK = "none"


class BranchRethinkRewardModelConfig(PretrainedConfig):
    r"""Configuration of [`BranchRethinkRewardModel`]: one causal LM answers two templated turns.

    Turn 1 (branching) reads ``context + branch_template`` and scores each attribute name (and `"none"`) as its
    continuation; the attributes are ranked by that probability and kept, most at risk first, until their
    probability mass reaches `branch_mass` or `max_branches` are kept (adaptive: a clear case keeps one branch, an
    unclear one several; `"none"` ranked first keeps none). Turn 2 (rethinking) reads
    ``context + rethink_template`` filled with the kept branches, and the reward is
    ``log p(positive_token) - log p(negative_token)`` for the next token.

    Args:
        lm_config (`dict` or `PretrainedConfig`, *optional*): the causal LM's configuration (a dict needs its
            `model_type`); defaults to a small GPT-2.
        attributes (`Sequence[str]`, defaults to `("correctness", "helpfulness", "format")`): what can be at risk.
        max_branches (`int`, defaults to 2): most attributes kept in turn 1 (>= 1).
        branch_mass (`float`, defaults to 0.6): probability mass at which branching stops, in (0, 1].
        branch_template (`str`, defaults to `"\n[branch] at risk:"`): appended to the context in turn 1.
        rethink_template (`str`, defaults to `"\n[rethink] {branches}; verdict:"`): appended in turn 2;
            `{branches}` becomes the kept attributes joined by ``", "`` (or `"none"`).
        positive_token (`str`, defaults to `" good"`) / negative_token (`str`, defaults to `" bad"`): the verdicts;
            their first tokens are compared.
    """

    model_type = "branch_rethink_reward_model"
    sub_configs = {"lm_config": AutoConfig}

    def __init__(
        self,
        lm_config: Optional[Union[dict, PretrainedConfig]] = None,
        attributes: Sequence[str] = ("correctness", "helpfulness", "format"),
        max_branches: int = 2,
        branch_mass: float = 0.6,
        branch_template: str = "\n[branch] at risk:",
        rethink_template: str = "\n[rethink] {branches}; verdict:",
        positive_token: str = " good",
        negative_token: str = " bad",
        **kwargs,
    ):
        attributes = [str(a) for a in attributes]
        if not attributes or len(set(attributes)) != len(attributes) or NO_RISK in attributes:
            raise ValueError(f"`attributes` must be distinct names other than {NO_RISK!r}, got {attributes}")
        if not isinstance(max_branches, int) or max_branches < 1:
            raise ValueError(f"`max_branches` must be an int >= 1, got {max_branches!r}")
        if not 0.0 < float(branch_mass) <= 1.0:
            raise ValueError(f"`branch_mass` must be in (0, 1], got {branch_mass}")
        if "{branches}" not in rethink_template:
            raise ValueError(f"`rethink_template` must contain '{{branches}}', got {rethink_template!r}")
        if positive_token == negative_token:
            raise ValueError("`positive_token` and `negative_token` must differ")
        kwargs["num_labels"] = 1
        super().__init__(**kwargs)
        self.lm_config = backbone_config_from(lm_config)
        self.attributes = attributes
        self.max_branches = max_branches
        self.branch_mass = float(branch_mass)
        self.branch_template = branch_template
        self.rethink_template = rethink_template
        self.positive_token = positive_token
        self.negative_token = negative_token
        self.tie_word_embeddings = getattr(self.lm_config, "tie_word_embeddings", True)


__all__ = ["NO_RISK", "BranchRethinkRewardModelConfig"]
