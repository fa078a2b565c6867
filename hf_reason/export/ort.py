# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""ONNX Runtime sessions and wrappers with the PyTorch models' interface.

- `ORTTRMForPuzzleSolving` takes torch tensors and returns the PyTorch model's own outputs
  (`TRMPuzzleSolvingOutput`, `TRMSolveOutput`), so code written against `TRMForPuzzleSolving`
  runs on ONNX Runtime unchanged.
- `ORTMetaAttentionForCausalLM.forward` returns a `MetaAttentionCausalLMOutput` with torch logits;
  its `past_key_values` is a list of numpy `(key, value)` pairs (fed straight back to the session)
  rather than a transformers `Cache`.
- `ORTCRSMForCausalLM.prefill` / `step` return dicts of numpy arrays: the recurrent states are
  plain arrays so deliberation can copy and branch them freely.
- Every `generate` returns a torch tensor of prompt + new tokens, as `model.generate(...)` does.

`from_pretrained` loads exactly the graphs `export_report.json` lists (an earlier export's leftover
file is never picked up) with the graph optimisation level the export was checked at. Sessions
are called with numpy arrays directly (no IO binding): on CPU that is already zero-copy for
contiguous arrays, and it keeps the per-call overhead to a few tens of microseconds.
"""

import json
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..models.trm import TRMCarry, TRMConfig, TRMPuzzleSolvingOutput, TRMSolveOutput
from ..models.trm.modeling_trm import solve_puzzles


OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
REPORT_NAME = "export_report.json"

PathLike = Union[str, os.PathLike]


def create_session(
    path: PathLike,
    optimization_level: str = "all",
    num_threads: Optional[int] = None,
    providers: Optional[list] = None,
    allow_spinning: Optional[bool] = None,
):
    """An `onnxruntime.InferenceSession` for `path`, with a clear error for a missing or broken file.

    Args:
        optimization_level: ONNX Runtime graph optimisations: one of `OPTIMIZATION_LEVELS`.
        num_threads: intra-op threads (`None`: ONNX Runtime's default, one per physical core).
        providers: execution providers (default: CPU).
        allow_spinning: whether idle intra-op threads busy-wait for the next op (`None`: ONNX
            Runtime's default, on). Off helps when other processes share the cores: measured on 2
            busy cores, GPT-2-small-shape INT8 decode 29.7 -> 44.0 tok/s (median of 7, very noisy);
            on idle cores spinning saves the wake-up latency of every op.
    """
    import onnxruntime as ort

    if optimization_level not in OPTIMIZATION_LEVELS:
        raise ValueError(
            f"`optimization_level` must be one of {', '.join(repr(o) for o in OPTIMIZATION_LEVELS)}; "
            f"got {optimization_level!r}."
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No ONNX model at {path}.")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization_level]
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    if allow_spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    options.log_severity_level = 3  # errors only: the quantized ops otherwise warn at every load
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own (non-importable) exception types
        raise ValueError(
            f"{path} is not a loadable ONNX model (truncated or corrupted file, or not ONNX at all): {error}"
        ) from error


def _np(tensor) -> np.ndarray:
    if isinstance(tensor, torch.Tensor):
        return np.ascontiguousarray(tensor.detach().cpu().numpy())
    return np.ascontiguousarray(tensor)


def read_export_report(model_dir: PathLike, family: str) -> dict:
    """`export_report.json` of an `hf-reason export` folder of `family`, with a clear error otherwise.

    The report is written last, so a folder without one is not a finished export."""
    path = Path(model_dir) / REPORT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{model_dir} has no {REPORT_NAME}: not an `hf-reason export` folder, or an export "
            "that did not finish; run `hf-reason export` again."
        )
    report = json.loads(path.read_text())
    if report.get("family") != family:
        raise ValueError(
            f"{model_dir} holds a {report.get('family')!r} export; this wrapper loads {family!r} exports."
        )
    return report


def _level(optimization_level: Optional[str], report: dict) -> str:
    # The level the export's parity was checked at, unless the caller asks for another.
    return optimization_level if optimization_level is not None else report.get("optimization_level", "all")


class ORTTRMForPuzzleSolving:
    """`TRMForPuzzleSolving` on ONNX Runtime: `forward` (one supervision step) and `solve`.

    `model.onnx` is the step graph (carry in / out), so `solve` runs the supervision loop and the
    halting in Python around the session exactly as the PyTorch model does (halted puzzles leave
    the batch). `solve.onnx`, when exported, is the whole fixed-step solve as one graph
    (`solve(..., graph="fused")`).
    """

    step_file_name = "model.onnx"
    solve_file_name = "solve.onnx"

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
    def from_pretrained(
        cls,
        model_dir: PathLike,
        optimization_level: Optional[str] = None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ) -> "ORTTRMForPuzzleSolving":
        """Loads an `hf-reason export` folder: the graphs its `export_report.json` lists (`model.onnx`,
        and `solve.onnx` when exported with `--trm-solve-graph`).

        Args:
            optimization_level: ONNX Runtime graph optimisations (default: the report's, the level
                the export's parity was checked at).
        """
        model_dir = Path(model_dir)
        report = read_export_report(model_dir, "trm")
        return cls.from_files(
            model_dir,
            report["files"],
            _level(optimization_level, report),
            report.get("solve_graph"),
            num_threads=num_threads,
            providers=providers,
            allow_spinning=allow_spinning,
        )

    @classmethod
    def from_files(
        cls,
        model_dir: PathLike,
        files,
        optimization_level: str = "all",
        solve_graph_info: Optional[dict] = None,
        config: Optional[TRMConfig] = None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ) -> "ORTTRMForPuzzleSolving":
        """Sessions for the named graph files of `model_dir` only (what `from_pretrained` and the
        exporter's parity check use)."""
        model_dir = Path(model_dir)
        config = config if config is not None else TRMConfig.from_pretrained(model_dir)
        sessions = {
            key: create_session(model_dir / name, optimization_level, num_threads, providers, allow_spinning)
            for key, name in (("step", cls.step_file_name), ("solve", cls.solve_file_name))
            if name in files
        }
        if not sessions:
            raise FileNotFoundError(
                f"The export in {model_dir} lists neither {cls.step_file_name} nor {cls.solve_file_name}."
            )
        return cls(config, sessions.get("step"), sessions.get("solve"), solve_graph_info)

    def halt_decision(self, q_halt_logits: torch.Tensor, q_continue_logits: torch.Tensor) -> torch.Tensor:
        if self.config.halting == "bce":
            return q_halt_logits > 0
        return q_halt_logits > q_continue_logits

    def _step_feed(self, input_ids, puzzle_identifiers, carry: TRMCarry) -> dict:
        feed = {
            "input_ids": _np(input_ids).astype(np.int64, copy=False),
            "carry_y": _np(carry.y).astype(np.float32, copy=False),
            "carry_z": _np(carry.z).astype(np.float32, copy=False),
            "carry_steps": _np(carry.steps).astype(np.int64, copy=False),
            "carry_halted": _np(carry.halted).astype(bool, copy=False),
        }
        if self.config.puzzle_emb_ndim:
            if puzzle_identifiers is None:
                puzzle_identifiers = np.zeros(feed["input_ids"].shape[0], dtype=np.int64)
            feed["puzzle_identifiers"] = _np(puzzle_identifiers).astype(np.int64, copy=False)
        if self.recurrent_q_head:
            feed["carry_q_hidden"] = _np(carry.q_hidden).astype(np.float32, copy=False)
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
        """One supervision step, as `TRMForPuzzleSolving.forward` in eval mode (no loss)."""
        if self.step_session is None:
            raise ValueError(f"This export has no step graph ({self.step_file_name}); only `solve(graph='fused')`.")
        input_ids = torch.as_tensor(input_ids)
        if input_ids.dim() != 2 or input_ids.shape[1] != self.config.seq_len:
            raise ValueError(
                f"`input_ids` must have shape (batch_size, seq_len={self.config.seq_len}); got {tuple(input_ids.shape)}."
            )
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
        feed = {"input_ids": _np(input_ids).astype(np.int64, copy=False)}
        if self.config.puzzle_emb_ndim:
            if puzzle_identifiers is None:
                puzzle_identifiers = np.zeros(feed["input_ids"].shape[0], dtype=np.int64)
            feed["puzzle_identifiers"] = _np(puzzle_identifiers).astype(np.int64, copy=False)
        predictions, steps, step_predictions, q_halt = self.solve_session.run(None, feed)
        # `solve` stops once every puzzle halted; the graph always runs its budget: trim to match.
        num_run = int(steps.max()) if steps.size else 0
        return TRMSolveOutput(
            predictions=torch.from_numpy(predictions),
            step_predictions=torch.from_numpy(step_predictions[:num_run]),
            steps=torch.from_numpy(steps),
            q_halt_logits=torch.from_numpy(q_halt[:num_run]),
        )


class ORTMetaAttentionForCausalLM:
    """`MetaAttentionForCausalLM` on ONNX Runtime: cached decoding and `generate`.

    Ours rather than Optimum's `ORTModelForCausalLM`: that class does not know the model type, and
    its `generate` (transformers' generation loop over a session) was measured at 10-17 ms per
    token of overhead; this loop keeps the cache as numpy arrays fed straight back to the session.
    `generate` supports greedy decoding and sampling (temperature, top-k) with an EOS stop.
    """

    file_name = "model.onnx"

    def __init__(self, config, session):
        self.config = config
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_names = [o.name for o in session.get_outputs()]
        self.num_layers = config.n_layer
        self.num_heads = config.n_head
        self.head_dim = config.n_embd // config.n_head
        # The meta-attention summaries take the top-k attended keys: the graph needs >= k keys.
        self.min_keys = config.meta_top_k if getattr(config, "use_meta_attention", False) else 1

    @classmethod
    def from_pretrained(
        cls,
        model_dir: PathLike,
        optimization_level: Optional[str] = None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ) -> "ORTMetaAttentionForCausalLM":
        """Loads an `hf-reason export` folder (`optimization_level` default: the report's)."""
        from ..models.meta_attention import MetaAttentionConfig

        model_dir = Path(model_dir)
        report = read_export_report(model_dir, "meta_attention")
        if cls.file_name not in report["files"]:
            raise FileNotFoundError(f"The export in {model_dir} lists no {cls.file_name}.")
        config = MetaAttentionConfig.from_pretrained(model_dir)
        return cls(
            config,
            create_session(
                model_dir / cls.file_name, _level(optimization_level, report), num_threads, providers, allow_spinning
            ),
        )

    def empty_cache(self, batch_size: int) -> list:
        shape = (batch_size, self.num_heads, 0, self.head_dim)
        return [(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.num_layers)]

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, input_ids, attention_mask=None, past_key_values: Optional[list] = None):
        """A `MetaAttentionCausalLMOutput`: `logits (batch, seq, vocab)` (torch) and `past_key_values`,
        the new cache as a list of numpy `(key, value)` pairs of shape `(batch, heads, positions, head_dim)`.

        `attention_mask` covers the cached and the new positions (as in transformers).
        """
        from ..models.meta_attention.modeling_meta_attention import MetaAttentionCausalLMOutput

        ids = _np(input_ids).astype(np.int64, copy=False)
        batch_size = ids.shape[0]
        if past_key_values is None:
            past_key_values = self.empty_cache(batch_size)
        past_len = past_key_values[0][0].shape[2]
        mask = (
            np.ones((batch_size, past_len + ids.shape[1]), np.int64)
            if attention_mask is None
            else _np(attention_mask).astype(np.int64, copy=False)
        )
        if past_len + ids.shape[1] < self.min_keys:
            raise ValueError(
                f"The meta-attention graph needs at least meta_top_k={self.min_keys} positions; left-pad the "
                "prompt (attention_mask 0), as `generate` does."
            )
        feed = {"input_ids": ids, "attention_mask": mask}
        for i, (key, value) in enumerate(past_key_values):
            feed[f"past_key_values.{i}.key"] = key
            feed[f"past_key_values.{i}.value"] = value
        logits, *present = self.session.run(None, feed)
        cache = [(present[2 * i], present[2 * i + 1]) for i in range(self.num_layers)]
        return MetaAttentionCausalLMOutput(logits=torch.from_numpy(logits), past_key_values=cache)

    def generate(
        self,
        input_ids,
        attention_mask=None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        eos_token_id: Optional[int] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        prefilled=None,
    ) -> torch.LongTensor:
        """Prompt + generated tokens `(batch, prompt + new)`, as `model.generate(...)` returns them.

        Finished rows (EOS) are filled with `pad_token_id`. Greedy decoding gives the PyTorch model's
        greedy tokens (up to float rounding at exact ties).

        Args:
            prefilled: this wrapper's output for the whole prompt (`self(input_ids, attention_mask)`):
                decoding starts from its last logits and cache instead of running the prompt again
                (branching several continuations off one prefill; timing decode alone).
        """
        _check_generate_args(max_new_tokens, do_sample, temperature)
        ids = _np(input_ids).astype(np.int64, copy=False)
        batch_size, prompt_len = ids.shape
        mask = np.ones_like(ids) if attention_mask is None else _np(attention_mask).astype(np.int64, copy=False)
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = _pad_id(pad_token_id, self.config, eos)
        if prefilled is not None:
            out = prefilled
            cached = out.past_key_values[0][0].shape[2]
            if out.logits.shape[0] != batch_size or mask.shape[1] != cached:
                raise ValueError(
                    f"`prefilled` must be this wrapper's output for `input_ids` / `attention_mask`: it holds "
                    f"{out.logits.shape[0]} rows and {cached} cached positions, but the mask is {tuple(mask.shape)}."
                )
        else:
            extra = max(0, self.min_keys - prompt_len)
            if extra:
                # Left padding with mask 0 leaves the model's outputs unchanged (positions and the
                # attention summaries count visible tokens only) and gives the top-k enough keys.
                ids = np.concatenate([np.full((batch_size, extra), pad if pad is not None else 0, np.int64), ids], 1)
                mask = np.concatenate([np.zeros((batch_size, extra), np.int64), mask], 1)
            out = self.forward(ids, mask)
        rng = np.random.default_rng(seed)
        finished = np.zeros(batch_size, dtype=bool)
        generated = []
        while True:
            tokens = _next_tokens(out.logits[:, -1].numpy(), do_sample, temperature, top_k, rng)
            if eos is not None:
                tokens = np.where(finished, pad, tokens)
                finished |= tokens == eos
            generated.append(tokens)
            if finished.all() or len(generated) == max_new_tokens:
                break
            mask = np.concatenate([mask, np.ones((batch_size, 1), np.int64)], 1)
            out = self.forward(tokens[:, None], mask, out.past_key_values)
        return torch.from_numpy(
            np.concatenate([_np(input_ids).astype(np.int64, copy=False), np.stack(generated, 1)], 1)
        )


def _check_generate_args(max_new_tokens, do_sample: bool, temperature: float) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be an integer >= 1, got {max_new_tokens!r}.")
    if do_sample and not temperature > 0:
        raise ValueError(f"`temperature` must be > 0 when sampling, got {temperature!r}.")


def _pad_id(pad_token_id: Optional[int], config, eos: Optional[int]) -> Optional[int]:
    if pad_token_id is not None:
        return pad_token_id
    return config.pad_token_id if config.pad_token_id is not None else eos


def _next_tokens(logits: np.ndarray, do_sample: bool, temperature: float, top_k: int, rng) -> np.ndarray:
    """Greedy or sampled (temperature, top-k) next tokens from last-position logits `(batch, vocab)`."""
    if not do_sample:
        return logits.argmax(-1)  # the same token in float32; a float64 copy cost 12 us per token at 50257
    scores = logits.astype(np.float64) / temperature
    if top_k:
        kth = np.sort(scores, axis=-1)[:, -top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs])


class ORTCRSMForCausalLM:
    """`CRSMForCausalLM` on ONNX Runtime: prefill, single-token steps with explicit states, `generate`.

    `prefill.onnx` takes a fixed chunk of `prefill_length` tokens and the states to continue from:
    a prompt of any length runs chunk after chunk, left-padded to a whole number of chunks (exact
    for Mamba, see `CRSMPrefillForExport`). States are numpy arrays `conv_states (batch,
    layers, intermediate, conv_kernel)` and `ssm_states (batch, layers, intermediate, state_size)`,
    so a caller can copy or branch them freely.

    `generate(deliberation="mcts", ...)` runs the CRSM's own MCTS (`mcts_generate`, unchanged) on
    ONNX Runtime: the search branches the recurrent states exactly as in PyTorch, and the
    aggregator, value head, latent dynamics and state-delta module run from their own small graphs.
    """

    step_file_name = "model.onnx"
    prefill_file_name = "prefill.onnx"
    head_file_names = ("summarize", "value", "dynamics", "state_delta")
    _OUTPUTS = ["logits", "conv_states_out", "ssm_states_out"]

    def __init__(self, config, step_session, prefill_session, head_sessions: Optional[dict] = None):
        self.config = config
        self.step_session = step_session
        self.prefill_session = prefill_session
        self.head_sessions = head_sessions or {}
        self.prefill_length = prefill_session.get_inputs()[0].shape[1]
        inputs = [i.name for i in prefill_session.get_inputs()]
        if inputs != ["input_ids", "attention_mask", "conv_states", "ssm_states"]:
            raise ValueError(
                f"prefill.onnx takes {inputs}; this wrapper needs the chunked prefill graph (input_ids, "
                "attention_mask, conv_states, ssm_states): re-export the model with `hf-reason export`."
            )
        for name, session in (("model.onnx", step_session), ("prefill.onnx", prefill_session)):
            outputs = [o.name for o in session.get_outputs()] if session is not None else self._OUTPUTS
            if outputs != self._OUTPUTS:
                raise ValueError(
                    f"{name} returns {outputs}; this wrapper needs {self._OUTPUTS} (the summary and "
                    "value come from the head graphs): re-export the model with `hf-reason export`."
                )

    @classmethod
    def from_pretrained(
        cls,
        model_dir: PathLike,
        optimization_level: Optional[str] = None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ) -> "ORTCRSMForCausalLM":
        """Loads an `hf-reason export` folder: the graphs its report lists (`optimization_level`
        default: the report's)."""
        model_dir = Path(model_dir)
        report = read_export_report(model_dir, "crsm")
        return cls.from_files(
            model_dir,
            report["files"],
            _level(optimization_level, report),
            num_threads=num_threads,
            providers=providers,
            allow_spinning=allow_spinning,
        )

    @classmethod
    def from_files(
        cls,
        model_dir: PathLike,
        files,
        optimization_level: str = "all",
        config=None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ) -> "ORTCRSMForCausalLM":
        """Sessions for the named graph files of `model_dir` only (the step and prefill graphs are required)."""
        from ..models.crsm import CRSMConfig

        model_dir = Path(model_dir)
        config = config if config is not None else CRSMConfig.from_pretrained(model_dir)
        for name in (cls.step_file_name, cls.prefill_file_name):
            if name not in files:
                raise FileNotFoundError(f"The export in {model_dir} lists no {name}.")

        def session(name: str):
            return create_session(model_dir / name, optimization_level, num_threads, providers, allow_spinning)

        heads = {name: session(f"{name}.onnx") for name in cls.head_file_names if f"{name}.onnx" in files}
        return cls(config, session(cls.step_file_name), session(cls.prefill_file_name), heads)

    def step(self, input_ids, conv_states: np.ndarray, ssm_states: np.ndarray, return_value: bool = False) -> dict:
        """One token per row `(batch, 1)` from the given states: logits `(batch, 1, vocab)` and the new
        states; with `return_value=True` also `state_summary` and `value` of the new state (through the
        `summarize` and `value` graphs, as `CRSMForCausalLM.forward(return_value=True)`)."""
        feed = {
            "input_ids": _np(input_ids).astype(np.int64, copy=False).reshape(-1, 1),
            "conv_states": conv_states,
            "ssm_states": ssm_states,
        }
        out = dict(zip(("logits", "conv_states", "ssm_states"), self.step_session.run(None, feed)))
        return self._add_value(out) if return_value else out

    def _add_value(self, out: dict) -> dict:
        """Adds `state_summary` and `value` of `out["ssm_states"]` (the `summarize` / `value` graphs)."""
        missing = [name for name in ("summarize", "value") if name not in self.head_sessions]
        if missing:
            raise ValueError(f"`return_value=True` needs the head graphs {missing}; re-export the model.")
        out["state_summary"] = self.head_sessions["summarize"].run(None, {"ssm_states": out["ssm_states"]})[0]
        out["value"] = self.head_sessions["value"].run(None, {"state_summary": out["state_summary"]})[0]
        return out

    def prefill(self, input_ids, attention_mask=None, return_value: bool = False) -> dict:
        """The prompt from empty states; `logits` are those of the last position `(batch, vocab)`,
        then the states (and, with `return_value=True`, `state_summary` and `value`, as `step`).

        `attention_mask` (1 = token) marks left padding within `input_ids`. The prompt runs through
        `prefill.onnx` in chunks of `prefill_length` tokens, each from the states the previous one
        returned; it is left-padded to a whole number of chunks (exact, see `CRSMPrefillForExport`).
        """
        ids = _np(input_ids).astype(np.int64, copy=False)
        mask = np.ones_like(ids) if attention_mask is None else _np(attention_mask).astype(np.int64, copy=False)
        if mask.shape != ids.shape:
            raise ValueError(f"`attention_mask` must have the shape of `input_ids` {ids.shape}; got {mask.shape}.")
        if (np.diff(mask, axis=1) < 0).any():
            raise ValueError("`attention_mask` may only mark padding on the left (zeros, then ones, in each row).")
        chunk = self.prefill_length
        pad = -ids.shape[1] % chunk
        pad_id = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        ids = np.concatenate([np.full((ids.shape[0], pad), pad_id, np.int64), ids], 1)
        mask = np.concatenate([np.zeros((ids.shape[0], pad), np.int64), mask], 1)
        config = self.config
        conv = np.zeros(
            (ids.shape[0], config.num_hidden_layers, config.intermediate_size, config.conv_kernel), np.float32
        )
        ssm = np.zeros(
            (ids.shape[0], config.num_hidden_layers, config.intermediate_size, config.state_size), np.float32
        )
        for start in range(0, ids.shape[1], chunk):
            feed = {
                "input_ids": ids[:, start : start + chunk],
                "attention_mask": mask[:, start : start + chunk],
                "conv_states": conv,
                "ssm_states": ssm,
            }
            logits, conv, ssm = self.prefill_session.run(None, feed)
        out = {"logits": logits[:, -1], "conv_states": conv, "ssm_states": ssm}
        return self._add_value(out) if return_value else out

    def generate(
        self,
        input_ids,
        attention_mask=None,
        max_new_tokens: int = 20,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        eos_token_id: Optional[int] = None,
        pad_token_id: Optional[int] = None,
        seed: Optional[int] = None,
        deliberation: Optional[str] = None,
        prefilled: Optional[dict] = None,
        **mcts_kwargs,
    ):
        """Prompt + generated tokens, as `CRSMForCausalLM.generate` returns them.

        Args:
            prefilled: this wrapper's `prefill(input_ids, attention_mask)` (or a later `step`'s output
                with last-position `logits`): decoding starts from its logits and states instead of
                running the prompt again. Not with deliberation.
            deliberation: `"mcts"`: the other keyword arguments are `mcts_generate`'s
                (`num_simulations`, `c_puct`, `top_k_expansion`, `rollout`, `rollout_depth`,
                `leaf_batch_size`, `apply_state_delta`, `return_dict_in_generate`, ...).
        """
        if deliberation is not None:
            if deliberation != "mcts":
                raise ValueError(f"`deliberation` must be None or 'mcts', got {deliberation!r}.")
            missing = [name for name in self.head_file_names if name not in self.head_sessions]
            if missing:
                raise ValueError(
                    f"Deliberation needs the head graphs {missing} (exported by `hf-reason export` "
                    "since this version); re-export the model."
                )
            if prefilled is not None:
                raise ValueError("`prefilled` cannot be combined with `deliberation`: the search prefills itself.")
            from ..models.crsm.mcts import mcts_generate

            return mcts_generate(
                _ORTCRSMSearchModel(self),
                torch.as_tensor(input_ids),
                attention_mask=attention_mask,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos_token_id,
                pad_token_id=pad_token_id,
                **mcts_kwargs,
            )
        _check_generate_args(max_new_tokens, do_sample, temperature)
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = _pad_id(pad_token_id, self.config, eos)
        rng = np.random.default_rng(seed)
        batch_size = _np(input_ids).shape[0]
        if prefilled is not None:
            shapes = {
                key: getattr(prefilled.get(key), "shape", None) for key in ("logits", "conv_states", "ssm_states")
            }
            if any(shape is None or shape[0] != batch_size for shape in shapes.values()) or len(shapes["logits"]) != 2:
                raise ValueError(
                    "`prefilled` must be this wrapper's `prefill(input_ids)` output (last-position logits "
                    f"(batch, vocab) and the states, {batch_size} rows); got shapes {shapes}."
                )
            out = prefilled
        else:
            out = self.prefill(input_ids, attention_mask)
        finished = np.zeros(batch_size, dtype=bool)
        generated = []
        for _ in range(max_new_tokens):
            tokens = _next_tokens(out["logits"], do_sample, temperature, top_k, rng)
            if eos is not None:
                tokens = np.where(finished, pad, tokens)
                finished |= tokens == eos
            generated.append(tokens)
            if finished.all() or len(generated) == max_new_tokens:
                break
            out = self.step(tokens, out["conv_states"], out["ssm_states"])
            out["logits"] = out["logits"][:, -1]
        return torch.from_numpy(
            np.concatenate([_np(input_ids).astype(np.int64, copy=False), np.stack(generated, 1)], 1)
        )


class _ORTCRSMSearchModel:
    """What `mcts_generate` calls on a CRSM, answered by ONNX Runtime sessions.

    The search keeps its states in `CRSMCache` objects and reads them after each call, so a step
    writes its new states back into the cache it was given, as the PyTorch forward does.
    """

    training = False
    device = torch.device("cpu")

    def __init__(self, ort_model: ORTCRSMForCausalLM):
        from transformers import GenerationConfig

        self.ort_model = ort_model
        self.config = ort_model.config
        self.generation_config = GenerationConfig.from_model_config(ort_model.config)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def _run(self, name: str, **feed) -> list:
        feed = {key: _np(value) for key, value in feed.items()}
        return [torch.from_numpy(a) for a in self.ort_model.head_sessions[name].run(None, feed)]

    def __call__(self, input_ids, cache_params=None, cache_position=None, use_cache=True, **kwargs):
        from types import SimpleNamespace

        from ..models.crsm import CRSMCache

        if cache_params is None:
            out = self.ort_model.prefill(input_ids)
            cache_params = CRSMCache(self.config, out["ssm_states"].shape[0])
        else:
            conv = torch.stack(cache_params.conv_states, 1).numpy()
            ssm = torch.stack(cache_params.ssm_states, 1).numpy()
            out = self.ort_model.step(input_ids, np.ascontiguousarray(conv), np.ascontiguousarray(ssm))
            out["logits"] = out["logits"][:, -1]
        cache_params.conv_states = list(torch.from_numpy(out["conv_states"]).unbind(1))
        cache_params.ssm_states = list(torch.from_numpy(out["ssm_states"]).unbind(1))
        return SimpleNamespace(logits=torch.from_numpy(out["logits"])[:, None], cache_params=cache_params)

    def summarize(self, states):
        if not isinstance(states, torch.Tensor):
            states = states.stacked_ssm_states()
        summary, weights = self._run("summarize", ssm_states=states.float())
        return summary, weights

    def predict_value(self, summary):
        return self._run("value", state_summary=summary.float())[0]

    def predict_next_summary(self, summary, tokens):
        return self._run("dynamics", state_summary=summary.float(), tokens=tokens.long())[0]

    def apply_state_delta(self, cache, summary=None):
        if summary is None:
            summary, _ = self.summarize(cache)
        correction = self._run("state_delta", state_summary=summary.float())[0]
        for i in range(len(cache.ssm_states)):
            cache.ssm_states[i] = cache.ssm_states[i] + self.config.delta_damping * correction[:, i]
        return correction


__all__ = [
    "OPTIMIZATION_LEVELS",
    "ORTCRSMForCausalLM",
    "ORTMetaAttentionForCausalLM",
    "ORTTRMForPuzzleSolving",
    "create_session",
]
