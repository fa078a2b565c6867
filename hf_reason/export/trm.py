# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""TRM export: its graphs, options, quantization defaults, parity check and registry entry.

The graphs are one supervision step with an explicit carry (`model.onnx`) and, with
`TRMExportOptions(solve_graph=True)`, the whole fixed-step solve (`solve.onnx`). Both wrap a
`TRMForPuzzleSolving` without copying weights. They exist because ONNX graphs take and return plain
tensors: the `TRMCarry` dataclass is spread into named inputs / outputs, and the solve's "finished
puzzles leave the batch" becomes masking with `torch.where` (a Python `break` would be unrolled by
the TorchScript tracer to the dummy input's depth and give wrong results).
"""

from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np
import torch
from torch import nn

from ..models.auto import AutoModelForPuzzleSolving
from ..models.trm import TRMCarry, TRMForPuzzleSolving
from ..models.trm.modeling_trm import supervision_steps
from .configs import onnx_config
from .ort_trm import ORTTRMForPuzzleSolving
from .pipeline import (
    ExportOptions,
    ExportRequest,
    FamilyExporter,
    build_export,
    check_bool,
    check_positive_int,
    optimum_trace,
    register_family,
)


class TRMStepForExport(nn.Module):
    """One supervision step (the full H/L recursion) with the carry as plain tensors.

    Inputs `carry_y`, `carry_z` of shape `(batch, prefix + seq_len, hidden)`, `carry_steps` (int64)
    and `carry_halted` (bool) of shape `(batch,)`; rows with `carry_halted=True` restart from the
    model's initial states, exactly as `TRMForPuzzleSolving.forward` does with a `TRMCarry`.
    """

    def __init__(self, model: TRMForPuzzleSolving):
        super().__init__()
        self.model = model
        self.config = model.config  # Optimum reads and sets `model.config`

    def forward(
        self,
        input_ids: torch.LongTensor,
        carry_y: torch.Tensor,
        carry_z: torch.Tensor,
        carry_steps: torch.LongTensor,
        carry_halted: torch.BoolTensor,
        puzzle_identifiers: Optional[torch.LongTensor] = None,
        carry_q_hidden: Optional[torch.Tensor] = None,
    ) -> dict:
        carry = TRMCarry(y=carry_y, z=carry_z, steps=carry_steps, halted=carry_halted)
        if carry_q_hidden is not None:  # the recurrent ("gru") halting head's memory
            carry.q_hidden = carry_q_hidden
        out = self.model(input_ids, puzzle_identifiers=puzzle_identifiers, carry=carry, return_dict=True)
        outputs = {
            "logits": out.logits,
            "q_halt_logits": out.q_halt_logits,
            "q_continue_logits": out.q_continue_logits,
            "next_y": out.carry.y,
            "next_z": out.carry.z,
            "next_steps": out.carry.steps,
            "next_halted": out.carry.halted,
        }
        if carry_q_hidden is not None:
            outputs["next_q_hidden"] = out.carry.q_hidden
        return outputs


def has_recurrent_q_head(config) -> bool:
    return getattr(config, "q_head_type", "linear") == "gru"


def _q_values(model: TRMForPuzzleSolving, answer: torch.Tensor, steps: torch.Tensor, q_hidden):
    # TRM builds without pluggable Q-heads have only `q_head(answer[:, 0])`.
    if hasattr(model, "q_values"):
        return model.q_values(answer, steps, q_hidden)
    q_halt, q_continue = model.q_head(answer[:, 0])
    return q_halt, q_continue, None


class TRMSolveForExport(nn.Module):
    """`TRMForPuzzleSolving.solve` with a fixed step budget as one graph.

    Every row runs all `max_steps` steps; a row that halted keeps its prediction and step count
    (masking), so the outputs equal `solve`'s. `step_predictions` and `q_halt_logits` always have
    `max_steps` rows (`solve` stops early when every puzzle halted; compare the first rows).
    """

    def __init__(self, model: TRMForPuzzleSolving, max_steps: Optional[int] = None, use_halting: bool = True):
        super().__init__()
        max_steps = model.config.halt_max_steps if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"`max_steps` must be an integer >= 1, got {max_steps!r}.")
        self.model = model
        self.config = model.config
        self.max_steps = max_steps
        self.use_halting = use_halting

    def forward(self, input_ids: torch.LongTensor, puzzle_identifiers: Optional[torch.LongTensor] = None) -> dict:
        core, prefix = self.model.model, self.model.model.puzzle_prefix_len
        batch_size = input_ids.shape[0]
        # The input embedding does not change between steps: computed once (the step graph
        # recomputes it each call, which is one reason the fused graph is cheaper per step).
        x = core.embed_inputs(input_ids, puzzle_identifiers)
        y = core.y_init.to(x.dtype).expand_as(x)
        z = core.z_init.to(x.dtype).expand_as(x)
        active = torch.ones(batch_size, dtype=torch.bool, device=input_ids.device)
        predictions = torch.zeros_like(input_ids)
        steps = torch.zeros_like(input_ids[:, 0])
        step_predictions, step_q_halt = [], []
        nan = torch.tensor(float("nan"), device=input_ids.device)
        q_hidden = None
        if has_recurrent_q_head(self.config):
            q_hidden = torch.zeros(batch_size, self.config.q_head_hidden_size, dtype=x.dtype, device=x.device)
        for step in range(self.max_steps):
            y, z = core.recursion(x, y, z)
            logits = self.model.lm_head(y[:, prefix:])
            q_halt, q_continue, q_hidden = _q_values(self.model, y, torch.full_like(steps, step + 1), q_hidden)
            predictions = torch.where(active.unsqueeze(-1), logits.argmax(-1), predictions)
            steps = torch.where(active, step + 1, steps)
            step_predictions.append(predictions)
            step_q_halt.append(torch.where(active, q_halt, nan))
            if self.use_halting:
                active = active & ~self.model.halt_decision(q_halt, q_continue)
        return {
            "predictions": predictions,
            "steps": steps,
            "step_predictions": torch.stack(step_predictions),
            "q_halt_logits": torch.stack(step_q_halt),
        }


@dataclass
class TRMExportOptions(ExportOptions):
    """
    TRM's export options (`export_pretrained(..., options=TRMExportOptions(...))`).

    Args:
        solve_graph (`bool`, defaults to `False`):
            Also export the whole fixed-step solve as one graph, `solve.onnx` (`--trm-solve-graph`).
        solve_max_steps (`int`, *optional*):
            The step budget baked into `solve.onnx` (default: the config's `halt_max_steps`).
        int8_fp32_token_mixer (`bool`, defaults to `True`):
            With the MLP mixer, INT8 keeps the token-mixing matmuls FP32: they carry most of the INT8
            error that the recursion compounds (docs/onnx.md, "TRM INT8: the token mixer stays FP32").
        int8_blockwise (`Mapping[str, int]`, *optional*):
            As in `ExportOptions`; TRM's default is none (every matmul dynamic INT8).
    """

    keyword_fields: ClassVar[dict] = {
        **ExportOptions.keyword_fields,
        "trm_solve_graph": "solve_graph",
        "trm_int8_fp32_token_mixer": "int8_fp32_token_mixer",
    }

    solve_graph: bool = field(
        default=False, metadata={"help": "Also export the whole fixed-step solve as solve.onnx (True or False)."}
    )
    solve_max_steps: Optional[int] = field(
        default=None,
        metadata={"help": "Step budget of solve.onnx, an integer >= 1 (default: the config's halt_max_steps)."},
    )
    int8_fp32_token_mixer: bool = field(
        default=True,
        metadata={"help": "MLP mixer, INT8: keep the token-mixing matmuls FP32 (True or False)."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_bool(self.solve_graph, "solve_graph")
        if self.solve_max_steps is not None:
            check_positive_int(self.solve_max_steps, "solve_max_steps")
        check_bool(self.int8_fp32_token_mixer, "int8_fp32_token_mixer")

    def solve_graph_info(self, config) -> Optional[dict]:
        """The report's `solve_graph`: the fused solve's step budget and halting rule, or None."""
        if not self.solve_graph:
            return None
        max_steps = config.halt_max_steps if self.solve_max_steps is None else self.solve_max_steps
        return {"max_steps": max_steps, "use_halting": True}

    def graph_fields(self, config) -> dict:
        return {"solve_graph": self.solve_graph_info(config)}

    def quantization(self, config) -> dict:
        # INT8 leaves the MLP mixer's token mixer FP32 (docs/onnx.md, "TRM INT8: the token mixer stays FP32").
        keep = ("token_mixer",) if config.mixer == "mlp" and self.int8_fp32_token_mixer else ()
        return {**super().quantization(config), "int8_keep_fp32": keep}


# Steps of the parity check: a few show drift and halting; the full budget would cost minutes at
# the reference size.
MAX_PARITY_STEPS = 6
_PARITY_KEYS = ("logits", "q_halt_logits", "q_continue_logits", "carry_y", "carry_z")


def _step_outputs(output) -> dict:
    return {
        "logits": output.logits,
        "q_halt_logits": output.q_halt_logits,
        "q_continue_logits": output.q_continue_logits,
        "carry_y": output.carry.y,
        "carry_z": output.carry.z,
    }


def trm_parity(model, ort_model, num_samples: int, seed: int, fp32: bool) -> dict:
    """PyTorch vs ONNX Runtime over supervision steps (every step's carry, logits and halting) and a
    whole `solve`.

    Two comparisons per step. Forced: ONNX Runtime gets PyTorch's carry of the previous step, so the
    differences are the export's own error at every step. Free-running: each side continues from its
    own carry, as in deployment (the carries drift apart by float rounding amplified through the
    recursion; docs/onnx.md, "The parity check"), for top-1 and halting agreement.
    """
    config = model.config
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (num_samples, config.seq_len), generator=gen)
    puzzle_ids = None
    if config.puzzle_emb_ndim:
        puzzle_ids = torch.randint(0, config.num_puzzle_identifiers, (num_samples,), generator=gen)
    max_abs = dict.fromkeys(_PARITY_KEYS, 0.0)

    def forced_step(carry=None, **inputs):
        pt = model(**inputs, carry=carry)
        forced = ort_model(**inputs, carry=carry)
        expected, actual = _step_outputs(pt), _step_outputs(forced)
        for key in _PARITY_KEYS:
            max_abs[key] = max(max_abs[key], float((expected[key] - actual[key]).abs().max()))
        return pt

    steps = min(config.halt_max_steps, MAX_PARITY_STEPS)
    inputs = {"input_ids": input_ids, "puzzle_identifiers": puzzle_ids}
    top1, halting = [], []
    with torch.no_grad():
        for pt, ox in zip(
            supervision_steps(forced_step, steps, **inputs), supervision_steps(ort_model, steps, **inputs)
        ):
            pt, ox = pt.output, ox.output
            top1.append((pt.logits.argmax(-1) == ox.logits.argmax(-1)).float().mean().item())
            pt_halts = model.halt_decision(pt.q_halt_logits, pt.q_continue_logits)
            ort_halts = ort_model.halt_decision(ox.q_halt_logits, ox.q_continue_logits)
            halting.append((pt_halts == ort_halts).float().mean().item())
        solved_pt = model.solve(input_ids, puzzle_identifiers=puzzle_ids, max_steps=steps)
        solved_ort = ort_model.solve(input_ids, puzzle_identifiers=puzzle_ids, max_steps=steps)
    result = {
        "samples": num_samples,
        "supervision_steps": steps,
        "top1_agreement": float(np.mean(top1)),
        "halting_agreement": float(np.mean(halting)),
        "solve_prediction_agreement": float((solved_pt.predictions == solved_ort.predictions).float().mean()),
        "solve_steps_equal": bool(torch.equal(solved_pt.steps, solved_ort.steps)),
    }
    if fp32:
        result["max_abs_diff_per_step"] = max_abs
    return result


def fused_solve_parity(model, ort_model, num_samples: int, seed: int, max_steps: int) -> dict:
    """PyTorch's `solve` vs the one-graph solve of `solve.onnx`, on other puzzles than `trm_parity`'s."""
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 1)
        ids = torch.randint(1, model.config.vocab_size, (num_samples, model.config.seq_len), generator=gen)
        pt = model.solve(ids, max_steps=max_steps)
        fused = ort_model.solve(ids, max_steps=max_steps, graph="fused")
    return {
        "fused_solve_prediction_agreement": float((pt.predictions == fused.predictions).float().mean()),
        "fused_solve_steps_equal": bool(torch.equal(pt.steps, fused.steps)),
    }


def export_trm(model, request: ExportRequest, options: TRMExportOptions) -> dict:
    """Exports a `TRMForPuzzleSolving` (the family's step of `export_pretrained`): `model.onnx`, the
    supervision step, and with `options.solve_graph` also `solve.onnx`, the whole fixed-step solve."""
    graphs = {
        "model.onnx": optimum_trace(
            TRMStepForExport(model), onnx_config("trm", "token-classification", model.config), request.opset
        )
    }
    solve_info = options.solve_graph_info(model.config)
    if solve_info is not None:
        # The fused solve repeats the step graph's weights: written together, they are stored once.
        graphs["solve.onnx"] = optimum_trace(
            TRMSolveForExport(model, max_steps=solve_info["max_steps"]),
            onnx_config("trm_solve", "token-classification", model.config),
            request.opset,
        )

    def parity(files) -> dict:
        ort_model = ORTTRMForPuzzleSolving.from_files(
            request.out_dir, files, request.optimization_level, config=model.config, solve_graph_info=solve_info
        )
        fp32 = request.precision == "fp32"
        result = trm_parity(model, ort_model, request.parity_samples, request.seed, fp32=fp32)
        if solve_info is not None:
            max_steps = solve_info["max_steps"]
            result.update(fused_solve_parity(model, ort_model, request.parity_samples, request.seed, max_steps))
        return result

    return build_export(model, request, options, graphs, parity)


TRM_EXPORTER = register_family(
    FamilyExporter(
        name="trm",
        tasks=("puzzle-solving",),
        options_class=TRMExportOptions,
        export=export_trm,
        auto_class=AutoModelForPuzzleSolving,
    )
)


__all__ = [
    "MAX_PARITY_STEPS",
    "TRM_EXPORTER",
    "TRMExportOptions",
    "TRMSolveForExport",
    "TRMStepForExport",
    "export_trm",
    "has_recurrent_q_head",
    "trm_parity",
]
