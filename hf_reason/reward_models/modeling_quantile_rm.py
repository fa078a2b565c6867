"""The multi-attribute quantile reward model: a backbone, last-token pooling and a monotone quantile head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_quantile_rm import QuantileRewardModelConfig


def pinball_loss(
    predicted: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Mean pinball (quantile) loss.

    For level ``tau`` and error ``u = target - predicted`` the loss is ``max(tau * u, (tau - 1) * u)``: its minimiser
    over a distribution of targets is that distribution's ``tau``-quantile.

    Args:
        predicted (`torch.Tensor` of shape `(batch, attributes, quantiles)`): predicted quantiles.
        target (`torch.Tensor` of shape `(batch, attributes)`): observed attribute scores (NaN: no label).
        quantiles (`torch.Tensor` of shape `(quantiles,)`): the levels.
        mask (`torch.Tensor` of shape `(batch, attributes)`, *optional*): 1 where a label counts; defaults to the
            non-NaN targets.
    """
    if predicted.dim() != 3 or target.shape != predicted.shape[:2] or quantiles.shape != predicted.shape[2:]:
        raise ValueError(
            f"pinball_loss: need predicted (B, A, Q), target (B, A), quantiles (Q,), got {tuple(predicted.shape)}, "
            f"{tuple(target.shape)}, {tuple(quantiles.shape)}"
        )
    present = ~torch.isnan(target)
    mask = present if mask is None else mask.bool() & present
    error = torch.nan_to_num(target).unsqueeze(-1) - predicted
    loss = torch.maximum(quantiles * error, (quantiles - 1) * error)
    weights = mask.unsqueeze(-1).to(loss.dtype).expand_as(loss)
    return (loss * weights).sum() / weights.sum().clamp_min(1.0)


def last_token_index(input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Per row, the position of the last attended token (right or left padding alike)."""
    if attention_mask is None:
        return torch.full((input_ids.size(0),), input_ids.size(1) - 1, device=input_ids.device, dtype=torch.long)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(-1)


def init_reward_head(module: nn.Module, std: float) -> None:
    """Initialises a reward head (a linear layer marked `_is_reward_head`): normal weights, zero bias. Other modules
    are left alone: the backbone keeps its own family's initialisation."""
    if isinstance(module, nn.Linear) and getattr(module, "_is_reward_head", False):
        module.weight.data.normal_(mean=0.0, std=std)
        if module.bias is not None:
            module.bias.data.zero_()


@dataclass
class QuantileRewardOutput(ModelOutput):
    """Output of [`QuantileRewardModel`].

    Args:
        loss (`torch.Tensor`, *optional*): pinball loss, when `labels` are given.
        logits (`torch.Tensor` of shape `(batch, 1)`): the scalar reward (the configured aggregate), where TRL's
            `RewardTrainer` and sequence-classification code read it.
        quantiles (`torch.Tensor` of shape `(batch, attributes, quantiles)`): predicted quantiles, increasing.
        attribute_scores (`torch.Tensor` of shape `(batch, attributes)`): per-attribute aggregate.
        hidden_states (`tuple[torch.Tensor]`, *optional*): the backbone's, when asked for.
    """

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    quantiles: Optional[torch.Tensor] = None
    attribute_scores: Optional[torch.Tensor] = None
    hidden_states: Optional[tuple[torch.Tensor, ...]] = None


class QuantileRewardPreTrainedModel(PreTrainedModel):
    config_class = QuantileRewardModelConfig
    base_model_prefix = "backbone"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module):
        init_reward_head(module, self.config.initializer_range)


class QuantileRewardModel(QuantileRewardPreTrainedModel):
    """Scores a sequence with per-attribute quantiles read from the hidden state of its last token.

    Args:
        config ([`QuantileRewardModelConfig`]).
        backbone (`PreTrainedModel`, *optional*): an existing backbone (e.g. a pretrained LM's `base_model`);
            defaults to `AutoModel.from_config(config.backbone_config)`.
    """

    def __init__(self, config: QuantileRewardModelConfig, backbone: Optional[PreTrainedModel] = None):
        super().__init__(config)
        self.backbone = backbone if backbone is not None else AutoModel.from_config(config.backbone_config)
        text_config = self.backbone.config.get_text_config()
        hidden = text_config.hidden_size
        self.num_attributes, self.num_quantiles = len(config.attributes), len(config.quantiles)
        self.head = nn.Linear(hidden, self.num_attributes * self.num_quantiles)
        self.head._is_reward_head = True
        self.register_buffer("quantile_levels", torch.tensor(config.quantiles), persistent=False)
        self.register_buffer("attribute_weights", torch.tensor(config.attribute_weights), persistent=False)
        self.post_init()

    @classmethod
    def from_causal_lm(cls, model: PreTrainedModel, **config_kwargs) -> QuantileRewardModel:
        """A reward model on a (pretrained) causal LM's body: its `base_model` becomes the backbone, its head is
        dropped. `config_kwargs` go to [`QuantileRewardModelConfig`]."""
        backbone = model.base_model
        config = QuantileRewardModelConfig(backbone_config=backbone.config.to_dict(), **config_kwargs)
        return cls(config, backbone=backbone)

    def get_input_embeddings(self):
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.backbone.set_input_embeddings(value)

    def quantiles_from_hidden(self, pooled: torch.Tensor) -> torch.Tensor:
        """`(batch, hidden)` -> increasing quantiles `(batch, attributes, quantiles)`: a base value plus softplus
        increments, so the levels cannot cross whatever the weights."""
        raw = self.head(pooled).view(-1, self.num_attributes, self.num_quantiles)
        increments = nn.functional.softplus(raw[..., 1:])
        return torch.cat([raw[..., :1], raw[..., :1] + increments.cumsum(-1)], dim=-1)

    def aggregate(self, quantiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-attribute scores `(batch, attributes)` and the weighted scalar reward `(batch,)`."""
        if self.config.aggregate == "mean":
            scores = quantiles.mean(-1)
        else:
            scores = quantiles[..., self.config.quantiles.index(self.config.aggregate_quantile)]
        return scores, scores @ self.attribute_weights.to(scores.dtype)

    def forward(
        self,
        input_ids: Optional[torch.LongTensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> QuantileRewardOutput:
        """
        Args:
            input_ids (`torch.LongTensor` of shape `(batch, seq)`): prompt + response tokens (padding either side).
            attention_mask (`torch.Tensor` of shape `(batch, seq)`, *optional*).
            labels (`torch.Tensor` of shape `(batch, attributes)`, *optional*): attribute scores (NaN: unlabelled);
                given, `loss` is the pinball loss.
        """
        kwargs.pop("use_cache", None)
        kwargs.pop("num_items_in_batch", None)
        outputs = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        index = last_token_index(input_ids, attention_mask)
        pooled = hidden[torch.arange(hidden.size(0), device=hidden.device), index]
        quantiles = self.quantiles_from_hidden(pooled)
        scores, reward = self.aggregate(quantiles)
        loss = None
        if labels is not None:
            loss = pinball_loss(quantiles, labels.to(quantiles.dtype), self.quantile_levels.to(quantiles.dtype))
        output = QuantileRewardOutput(
            loss=loss,
            logits=reward.unsqueeze(-1),
            quantiles=quantiles,
            attribute_scores=scores,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
        )
        return output if return_dict is not False else output.to_tuple()


__all__ = ["QuantileRewardModel", "QuantileRewardOutput", "QuantileRewardPreTrainedModel", "pinball_loss"]
