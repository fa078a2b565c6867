"""Test-time training of a TRM on one ARC task, then prediction with augmentation voting.

A trained TRM has never seen an evaluation task's puzzle identifier. Test-time training gives each
augmented version of the task a fresh row of the puzzle embedding and fits those rows (and, optionally,
LoRA adapters on the network's linear layers, through peft) to the task's own demonstration pairs under
the same augmentations, with the method's deep supervision: several supervision steps per batch, an
optimizer step after each. The puzzle rows use the sign-SGD optimizer the training run used for them;
the adapters AdamW. Everything else stays frozen, and the model passed in is never modified: the
adapted model is a copy.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..data.arc import ARC_IGNORE_INDEX, ARC_PAD_TOKEN, ArcTask, apply_arc_augmentation, draw_arc_augmentations
from ..data.arc import encode_arc_grid as _encode
from ..models.trm.modeling_trm import TRMPuzzleEmbedding
from .voting import VoteCandidate, predict_with_voting


__all__ = ["ArcTTTConfig", "ArcTTTResult", "solve_with_ttt", "test_time_train"]

DEFAULT_LORA_MODULES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass
class ArcTTTConfig:
    """
    Test-time training on one task.

    Args:
        num_augmentations (`int`, defaults to 15): augmented versions of the task besides the original,
            each with its own puzzle-embedding row; the same versions are voted over afterwards.
        steps (`int`, defaults to 64): optimizer steps at most.
        supervision_steps (`int`, defaults to 2): supervision steps run on each sampled batch (an
            optimizer step after each, the carry continuing), as deep supervision trains.
        batch_size (`int`, defaults to 16): demonstration pairs per batch (sampled over all versions).
        puzzle_emb_lr (`float`, defaults to 1e-2): sign-SGD learning rate of the new embedding rows.
        puzzle_emb_weight_decay (`float`, defaults to 0.1): their decoupled weight decay.
        init_from_mean (`bool`, defaults to True): start the new rows at the mean of the trained rows
            (an "average task"); False starts them at zero (the blank puzzle).
        lora_rank (`int`, defaults to 0): rank of LoRA adapters on `lora_target_modules`; 0 trains the
            puzzle embedding only.
        lora_alpha (`int`, defaults to 16): LoRA scaling numerator.
        lora_lr (`float`, defaults to 1e-4): AdamW learning rate of the adapters.
        lora_target_modules (`tuple[str, ...]`): the linear layers that get adapters.
        cpu_seconds (`float`, *optional*): stop training once this much CPU time is spent (the
            `time.process_time` of this process); None: `steps` only.
        max_inference_steps (`int`, *optional*): supervision steps at prediction (default: the model's).
        seed (`int`, defaults to 0): seed of the augmentations, the batches and the LoRA init.
    """

    num_augmentations: int = 15
    steps: int = 64
    supervision_steps: int = 2
    batch_size: int = 16
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    init_from_mean: bool = True
    lora_rank: int = 0
    lora_alpha: int = 16
    lora_lr: float = 1e-4
    lora_target_modules: tuple = field(default=DEFAULT_LORA_MODULES)
    cpu_seconds: Optional[float] = None
    max_inference_steps: Optional[int] = None
    seed: int = 0

    def __post_init__(self):
        for name in ("num_augmentations", "lora_rank"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("steps", "supervision_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.cpu_seconds is not None and not self.cpu_seconds > 0:
            raise ValueError(f"cpu_seconds must be > 0 or None, got {self.cpu_seconds!r}")


@dataclass
class ArcTTTResult:
    """
    Args:
        model: the adapted copy (puzzle embedding with one row per augmentation, plus adapters).
        augmentations (`list[str]`): the task's versions; version `i` has puzzle identifier `i + 1`.
        steps (`int`): optimizer steps taken.
        cpu_seconds (`float`): CPU seconds spent training.
        losses (`list[float]`): the loss of every optimizer step.
    """

    model: torch.nn.Module
    augmentations: list
    steps: int
    cpu_seconds: float
    losses: list

    @property
    def puzzle_identifiers(self) -> list[int]:
        return list(range(1, len(self.augmentations) + 1))


def _encode_labels(grid) -> np.ndarray:
    labels = _encode(grid)
    labels[labels == ARC_PAD_TOKEN] = ARC_IGNORE_INDEX
    return labels


def _adaptable_copy(
    model, num_rows: int, config: ArcTTTConfig, generator: torch.Generator, start_rows: Optional[list] = None
):
    """A frozen copy of `model` with a fresh puzzle embedding of `num_rows` rows (row 0: the blank
    puzzle; row i starts from the model's row `start_rows[i - 1]` when given, else from the mean or
    zero) and, with `lora_rank > 0`, LoRA adapters; only those are trainable."""
    if not model.config.puzzle_emb_ndim and not config.lora_rank:
        raise ValueError(
            "test-time training needs a puzzle embedding (the model has puzzle_emb_ndim=0) or LoRA adapters "
            "(lora_rank > 0)"
        )
    adapted = copy.deepcopy(model)
    for parameter in adapted.parameters():
        parameter.requires_grad_(False)
    if model.config.puzzle_emb_ndim:
        old = adapted.model.puzzle_embedding.weight
        embedding = TRMPuzzleEmbedding(num_rows, old.shape[1]).to(device=old.device, dtype=old.dtype)
        with torch.no_grad():
            start = old[1:].mean(0) if config.init_from_mean and old.shape[0] > 1 else torch.zeros_like(old[0])
            embedding.weight.copy_(start.expand(num_rows, -1))
            embedding.weight[0] = old[0]
            if start_rows is not None:
                embedding.weight[1:] = old[torch.as_tensor(start_rows, device=old.device)]
        adapted.model.puzzle_embedding = embedding
        adapted.config.num_puzzle_identifiers = num_rows
    if config.lora_rank:
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=list(config.lora_target_modules)
        )
        # peft draws the adapters' initial weights from torch's global generator: seed a forked one
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            adapted = inject_adapter_in_model(lora, adapted)
        for name, parameter in adapted.named_parameters():
            parameter.requires_grad_("lora_" in name)
    if model.config.puzzle_emb_ndim:
        adapted.model.puzzle_embedding.weight.requires_grad_(True)
    return adapted


def test_time_train(
    model,
    task: ArcTask,
    config: Optional[ArcTTTConfig] = None,
    known_versions: Optional[dict[str, int]] = None,
) -> ArcTTTResult:
    """Fits a copy of `model` to the task's demonstration pairs (never its test outputs).

    Args:
        model: a trained `TRMForPuzzleSolving` on the ARC encoding.
        task: the task (its `train` pairs and `test_inputs` are read).
        config: the settings (`ArcTTTConfig()` by default).
        known_versions: augmentation -> puzzle identifier of versions of this task the model was trained
            on (the papers' protocol trains on the evaluation tasks' demonstration pairs): training then
            continues from those rows, over those versions, instead of drawing new ones.
    """
    from hf_reason.trainers.deep_supervision_trainer import SignSGD

    config = config or ArcTTTConfig()
    start = time.process_time()
    generator = torch.Generator().manual_seed(config.seed)
    grids = [g for pair in task.train for g in pair] + list(task.test_inputs)
    start_rows = None
    if known_versions:
        augmentations = list(known_versions)
        start_rows = [known_versions[a] for a in augmentations]
    else:
        augmentations = draw_arc_augmentations(grids, config.num_augmentations, seed=config.seed)
    adapted = _adaptable_copy(model, len(augmentations) + 1, config, generator, start_rows)
    device = next(adapted.parameters()).device
    inputs, labels, identifiers = [], [], []
    for identifier, augmentation in enumerate(augmentations, start=1):
        for x, y in task.train:
            inputs.append(_encode(apply_arc_augmentation(x, augmentation)))
            labels.append(_encode_labels(apply_arc_augmentation(y, augmentation)))
            identifiers.append(identifier)
    inputs_t = torch.as_tensor(np.stack(inputs), device=device)
    labels_t = torch.as_tensor(np.stack(labels), device=device)
    identifiers_t = torch.as_tensor(identifiers, device=device)

    optimizers = []
    if model.config.puzzle_emb_ndim:
        optimizers.append(
            SignSGD(
                [adapted.model.puzzle_embedding.weight],
                lr=config.puzzle_emb_lr,
                weight_decay=config.puzzle_emb_weight_decay,
            )
        )
    adapters = [p for n, p in adapted.named_parameters() if p.requires_grad and "lora_" in n]
    if adapters:
        optimizers.append(torch.optim.AdamW(adapters, lr=config.lora_lr, weight_decay=0.0))

    adapted.train()
    losses: list[float] = []
    steps = 0

    def spent() -> bool:
        over_budget = config.cpu_seconds is not None and time.process_time() - start > config.cpu_seconds
        return steps >= config.steps or over_budget

    while not spent():
        batch = torch.randint(0, len(inputs), (config.batch_size,), generator=generator).to(device)
        carry = None
        for _ in range(config.supervision_steps):
            if spent():
                break
            output = adapted(
                input_ids=inputs_t[batch], labels=labels_t[batch], puzzle_identifiers=identifiers_t[batch], carry=carry
            )
            output.loss.backward()
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            carry = output.carry.continued()
            losses.append(float(output.loss.detach()))
            steps += 1
    adapted.eval()
    return ArcTTTResult(adapted, augmentations, steps, time.process_time() - start, losses)


def solve_with_ttt(
    model, task: ArcTask, config: Optional[ArcTTTConfig] = None, known_versions: Optional[dict[str, int]] = None
) -> tuple[list[list[VoteCandidate]], ArcTTTResult]:
    """Test-time training (`test_time_train`), then augmentation voting over the task's versions with
    their fitted rows. Returns the candidates per test input (best first) and the training result."""
    config = config or ArcTTTConfig()
    trained = test_time_train(model, task, config, known_versions)
    identifiers = trained.puzzle_identifiers if model.config.puzzle_emb_ndim else None
    votes = predict_with_voting(
        trained.model,
        task.test_inputs,
        trained.augmentations,
        identifiers,
        max_steps=config.max_inference_steps,
        top_k=None,
    )
    return votes, trained
