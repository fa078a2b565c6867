# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`ORTTRMForPuzzleSolving`: `TRMForPuzzleSolving` on ONNX Runtime.

It takes torch tensors and returns the PyTorch model's own outputs (`TRMPuzzleSolvingOutput`,
`TRMSolveOutput`), so code written against `TRMForPuzzleSolving` runs on ONNX Runtime unchanged.
"""

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..models.trm import TRMCarry, TRMConfig, TRMPuzzleSolvingOutput, TRMSolveOutput
from ..models.trm.modeling_trm import check_puzzle_inputs, solve_puzzles
from .sessions import ORTModelForExport, as_numpy


class ORTTRMForPuzzleSolving(ORTModelForExport):
    """`TRMForPuzzleSolving` on ONNX Runtime: `forward` (one supervision step) and `solve`.

    `model.onnx` is the step graph (carry in / out), so `solve` runs the supervision loop and the
    halting in Python around the session exactly as the PyTorch model does (halted puzzles leave
    the batch). `solve.onnx`, when exported (`--trm-solve-graph`), is the whole fixed-step solve as
    one graph (`solve(..., graph="fused")`). `from_pretrained` loads the graphs the export lists,
    `from_files(..., solve_graph_info=...)` the named ones.
    """

    family = "trm"
    config_class = TRMConfig
    step_file_name = "model.onnx"
    solve_file_name = "solve.onnx"
    graph_files = (step_file_name, solve_file_name)

    def __init__(
        self, config: TRMConfig, step_session=None, solve_session=None, solve_graph_info: Optional[dict] = None
    ):
        if step_session is None and solve_session is None:
            raise ValueError("`ORTTRMForPuzzleSolving` needs a `step_session`, a `solve_session`, or both.")
        if solve_session is not None and not {"max_steps", "use_halting"} <= set(solve_graph_info or {}):
            # The fused graph's step budget and halting rule are baked in at export; without them a
            # `solve(max_steps=...)` could not be checked against what the graph actually runs.
            raise ValueError(
                "`solve_graph_info` must give the one-graph solve's `max_steps` and `use_halting` "
                f"(the report's `solve_graph`); got {solve_graph_info!r}."
            )
        self.config = config
        self.step_session = step_session
        self.solve_session = solve_session
        self.solve_graph_info = dict(solve_graph_info or {}) if solve_session is not None else {}
        self.puzzle_prefix_len = config.puzzle_prefix_len
        self.recurrent_q_head = getattr(config, "q_head_type", "linear") == "gru"

    @classmethod
    def _report_arguments(cls, report: dict) -> dict:
        return {"solve_graph_info": report.get("solve_graph")}

    @classmethod
    def _check_files(cls, model_dir: Path, files) -> None:
        if cls.step_file_name not in files and cls.solve_file_name not in files:
            raise FileNotFoundError(
                f"The export in {model_dir} lists neither {cls.step_file_name} nor {cls.solve_file_name}."
            )

    @classmethod
    def _from_sessions(
        cls, config: TRMConfig, sessions: dict, solve_graph_info: Optional[dict] = None
    ) -> "ORTTRMForPuzzleSolving":
        return cls(config, sessions.get(cls.step_file_name), sessions.get(cls.solve_file_name), solve_graph_info)

    def halt_decision(self, q_halt_logits: torch.Tensor, q_continue_logits: torch.Tensor) -> torch.Tensor:
        if self.config.halting == "bce":
            return q_halt_logits > 0
        return q_halt_logits > q_continue_logits

    def _step_feed(self, input_ids, puzzle_identifiers, carry: TRMCarry) -> dict:
        """The step graph's inputs from inputs `check_puzzle_inputs` accepted."""
        feed = {
            "input_ids": as_numpy(input_ids).astype(np.int64, copy=False),
            "carry_y": as_numpy(carry.y).astype(np.float32, copy=False),
            "carry_z": as_numpy(carry.z).astype(np.float32, copy=False),
            "carry_steps": as_numpy(carry.steps).astype(np.int64, copy=False),
            "carry_halted": as_numpy(carry.halted).astype(bool, copy=False),
        }
        if self.config.puzzle_emb_ndim:
            if puzzle_identifiers is None:
                puzzle_identifiers = np.zeros(feed["input_ids"].shape[0], dtype=np.int64)
            feed["puzzle_identifiers"] = as_numpy(puzzle_identifiers).astype(np.int64, copy=False)
        if self.recurrent_q_head:
            feed["carry_q_hidden"] = as_numpy(carry.q_hidden).astype(np.float32, copy=False)
        return feed

    def initial_carry(self, batch_size: int) -> TRMCarry:
        # All rows halted: the graph replaces y / z by the model's initial states, so zeros will do.
        shape = (batch_size, self.config.seq_len + self.puzzle_prefix_len, self.config.hidden_size)
        q_hidden = torch.zeros(batch_size, self.config.q_head_hidden_size) if self.recurrent_q_head else None
        return TRMCarry(
            y=torch.zeros(shape),
            z=torch.zeros(shape),
            steps=torch.zeros(batch_size, dtype=torch.long),
            halted=torch.ones(batch_size, dtype=torch.bool),
            q_hidden=q_hidden,
        )

    def __call__(self, *args, **kwargs) -> TRMPuzzleSolvingOutput:
        return self.forward(*args, **kwargs)

    def forward(self, input_ids, puzzle_identifiers=None, carry: Optional[TRMCarry] = None) -> TRMPuzzleSolvingOutput:
        """One supervision step, as `TRMForPuzzleSolving.forward` in eval mode (no loss); the inputs are
        checked as the model checks them (`check_puzzle_inputs`), with the same errors."""
        if self.step_session is None:
            raise ValueError(f"This export has no step graph ({self.step_file_name}); only `solve(graph='fused')`.")
        input_ids, puzzle_identifiers = check_puzzle_inputs(self.config, input_ids, puzzle_identifiers, carry)
        if carry is None:
            carry = self.initial_carry(input_ids.shape[0])
        logits, q_halt, q_continue, y, z, steps, halted, *q_hidden = self.step_session.run(
            None, self._step_feed(input_ids, puzzle_identifiers, carry)
        )
        carry = TRMCarry(
            y=torch.from_numpy(y),
            z=torch.from_numpy(z),
            steps=torch.from_numpy(steps),
            halted=torch.from_numpy(halted),
        )
        if q_hidden:
            carry.q_hidden = torch.from_numpy(q_hidden[0])
        return TRMPuzzleSolvingOutput(
            logits=torch.from_numpy(logits),
            q_halt_logits=torch.from_numpy(q_halt),
            q_continue_logits=torch.from_numpy(q_continue),
            carry=carry,
        )

    def solve(
        self,
        input_ids,
        puzzle_identifiers=None,
        max_steps: Optional[int] = None,
        use_halting: bool = True,
        graph: str = "auto",
    ) -> TRMSolveOutput:
        """`TRMForPuzzleSolving.solve` on ONNX Runtime, with the same outputs.

        Args:
            graph: `"step"` (Python loop around the step graph; halted puzzles leave the batch),
                `"fused"` (the one-graph solve; its step budget and halting were fixed at export),
                or `"auto"` (the step graph when present).
        """
        if graph not in ("auto", "step", "fused"):
            raise ValueError(f"`graph` must be one of 'auto', 'step', 'fused'; got {graph!r}.")
        max_steps = self.config.halt_max_steps if max_steps is None else max_steps
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"`max_steps` must be an integer >= 1, got {max_steps!r}.")
        if graph == "fused" or (graph == "auto" and self.step_session is None):
            return self._solve_fused(input_ids, puzzle_identifiers, max_steps, use_halting)
        return solve_puzzles(self, input_ids, puzzle_identifiers, max_steps=max_steps, use_halting=use_halting)

    def _solve_fused(self, input_ids, puzzle_identifiers, max_steps: int, use_halting: bool) -> TRMSolveOutput:
        if self.solve_session is None:
            raise ValueError(
                f"This export has no one-graph solve ({self.solve_file_name}: the report's `solve_graph` "
                "is null); export it with `--trm-solve-graph` or use `graph='step'`."
            )
        exported = (self.solve_graph_info["max_steps"], self.solve_graph_info["use_halting"])
        if exported != (max_steps, use_halting):
            raise ValueError(
                f"The one-graph solve was exported with max_steps={exported[0]}, use_halting={exported[1]}; got "
                f"max_steps={max_steps}, use_halting={use_halting}. Use `graph='step'` for other settings."
            )
        input_ids, puzzle_identifiers = check_puzzle_inputs(self.config, input_ids, puzzle_identifiers)
        feed = {"input_ids": as_numpy(input_ids)}
        if self.config.puzzle_emb_ndim:
            if puzzle_identifiers is None:
                puzzle_identifiers = np.zeros(feed["input_ids"].shape[0], dtype=np.int64)
            feed["puzzle_identifiers"] = as_numpy(puzzle_identifiers).astype(np.int64, copy=False)
        predictions, steps, step_predictions, q_halt = self.solve_session.run(None, feed)
        # `solve` stops once every puzzle halted; the graph always runs its budget: trim to match.
        num_run = int(steps.max()) if steps.size else 0
        return TRMSolveOutput(
            predictions=torch.from_numpy(predictions),
            step_predictions=torch.from_numpy(step_predictions[:num_run]),
            steps=torch.from_numpy(steps),
            q_halt_logits=torch.from_numpy(q_halt[:num_run]),
        )


__all__ = ["ORTTRMForPuzzleSolving"]
