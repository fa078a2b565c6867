"""The hierarchical reward model: per-step soundness (process) and end-to-end correctness (outcome) on one backbone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_hierarchical_rm import HierarchicalRewardModelConfig
from .modeling_quantile_rm import init_reward_head, last_token_index


@dataclass
class HierarchicalRewardOutput(ModelOutput):
    """Output of [`HierarchicalRewardModel`].

    Args:
        loss (`torch.Tensor`, *optional*): binary cross-entropy of the labelled steps plus that of the outcome.
        logits (`torch.Tensor` of shape `(batch, 1)`): the combined reward (see the config's weighting).
        step_logits (`torch.Tensor` of shape `(batch, seq)`): the process head's logit at every position; read it
            where `step_mask` is 1 (the last token of each step).
        outcome_logits (`torch.Tensor` of shape `(batch,)`): the outcome head's logit at the last token.
        process_scores (`torch.Tensor` of shape `(batch,)`): the aggregated step soundness, in [0, 1].
    """

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    step_logits: Optional[torch.Tensor] = None
    outcome_logits: Optional[torch.Tensor] = None
    process_scores: Optional[torch.Tensor] = None


class HierarchicalRewardPreTrainedModel(PreTrainedModel):
    config_class = HierarchicalRewardModelConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module):
        init_reward_head(module, self.config.initializer_range)


class HierarchicalRewardModel(HierarchicalRewardPreTrainedModel):
    """A process head on the last token of every step and an outcome head on the last token of the response.

    Args:
        config ([`HierarchicalRewardModelConfig`]).
        backbone (`PreTrainedModel`, *optional*): defaults to `AutoModel.from_config(config.backbone_config)`.
    """

    def __init__(self, config: HierarchicalRewardModelConfig, backbone: Optional[PreTrainedModel] = None):
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.backbone_config)
        hidden = self.backbone.config.get_text_config().hidden_size
        self.step_head = nn.Linear(hidden, 1)
        self.outcome_head = nn.Linear(hidden, 1)
        self.step_head._is_reward_head = self.outcome_head._is_reward_head = True
        self.post_init()

    @classmethod
    def from_causal_lm(cls, model: PreTrainedModel, **config_kwargs) -> HierarchicalRewardModel:
        """A hierarchical reward model on a causal LM's body (its `base_model`); `config_kwargs` go to the config."""
        backbone = model.base_model
        config = HierarchicalRewardModelConfig(backbone_config=backbone.config.to_dict(), **config_kwargs)
        return cls(config, backbone=backbone)

    def get_input_embeddings(self):
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.backbone.set_input_embeddings(value)

    def combine(self, step_probabilities: torch.Tensor, step_mask: torch.Tensor, outcome: torch.Tensor):
        """(process score, combined reward), each `(batch,)`, from step probabilities `(batch, seq)` read where
        `step_mask` is 1 and outcome probabilities `(batch,)`."""
        mask = step_mask.bool()
        has_steps = mask.any(-1)
        if self.config.process_aggregate == "min":
            process = step_probabilities.masked_fill(~mask, 1.0).min(-1).values
        elif self.config.process_aggregate == "mean":
            process = (step_probabilities * mask).sum(-1) / mask.sum(-1).clamp_min(1)
        else:
            process = torch.where(mask, step_probabilities.clamp_min(1e-12).log(), 0.0).sum(-1).exp()
        process = torch.where(has_steps, process, outcome)
        weight = self.config.process_weight
        return process, weight * process + (1 - weight) * outcome

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        step_mask: Optional[torch.Tensor] = None,
        step_labels: Optional[torch.Tensor] = None,
        outcome_labels: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> HierarchicalRewardOutput:
        """
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): prompt, steps and final answer.
            attention_mask (`torch.Tensor` of shape `(batch, seq)`, *optional*).
            step_mask (`torch.Tensor` of shape `(batch, seq)`, *optional*): 1 at the last token of each step
                (`encode_steps` builds it); without it the reward is the outcome head's alone.
            step_labels (`torch.Tensor` of shape `(batch, seq)`, *optional*): 1 sound / 0 unsound at step ends,
                anything at other positions (ignored).
            outcome_labels (`torch.Tensor` of shape `(batch,)`, *optional*): 1 when the response is right.
        """
        kwargs.pop("use_cache", None)
        kwargs.pop("num_items_in_batch", None)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
        hidden = hidden.last_hidden_state
        step_logits = self.step_head(hidden).squeeze(-1)
        last = last_token_index(input_ids, attention_mask)
        outcome_logits = self.outcome_head(hidden[torch.arange(hidden.size(0), device=hidden.device), last]).squeeze(
            -1
        )
        if step_mask is None:
            step_mask = torch.zeros_like(step_logits, dtype=torch.bool)
        process, reward = self.combine(torch.sigmoid(step_logits), step_mask, torch.sigmoid(outcome_logits))
        loss = None
        bce = nn.functional.binary_cross_entropy_with_logits
        if step_labels is not None:
            mask = step_mask.bool()
            if mask.any():
                loss = bce(step_logits[mask], step_labels[mask].to(step_logits.dtype))
        if outcome_labels is not None:
            outcome_loss = bce(outcome_logits, outcome_labels.to(outcome_logits.dtype))
            loss = outcome_loss if loss is None else loss + outcome_loss
        output = HierarchicalRewardOutput(
            loss=loss,
            logits=reward.unsqueeze(-1),
            step_logits=step_logits,
            outcome_logits=outcome_logits,
            process_scores=process,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = ["HierarchicalRewardModel", "HierarchicalRewardOutput", "HierarchicalRewardPreTrainedModel"]
