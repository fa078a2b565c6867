# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""`ORTCRSMForCausalLM`: `CRSMForCausalLM` on ONNX Runtime, MCTS deliberation included.

`prefill` / `step` return dicts of numpy arrays: the recurrent states are plain arrays so
deliberation can copy and branch them freely. `generate` returns a torch tensor of prompt + new
tokens, as `model.generate(...)` does.
"""

from typing import Optional

import numpy as np
import torch

from ..models.crsm import CRSMCache, CRSMConfig
from .sessions import (
    ORTModelForExport,
    as_numpy,
    check_generate_args,
    generate_tokens,
    resolve_pad_token_id,
    structured_options,
)


class ORTCRSMForCausalLM(ORTModelForExport):
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

    family = "crsm"
    config_class = CRSMConfig
    step_file_name = "model.onnx"
    prefill_file_name = "prefill.onnx"
    head_file_names = ("summarize", "value", "dynamics", "state_delta")
    required_files = (step_file_name, prefill_file_name)
    graph_files = required_files + tuple(f"{name}.onnx" for name in head_file_names)
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
    def _from_sessions(cls, config, sessions: dict) -> "ORTCRSMForCausalLM":
        heads = {name: sessions[f"{name}.onnx"] for name in cls.head_file_names if f"{name}.onnx" in sessions}
        return cls(config, sessions[cls.step_file_name], sessions[cls.prefill_file_name], heads)

    def step(self, input_ids, conv_states: np.ndarray, ssm_states: np.ndarray, return_value: bool = False) -> dict:
        """One token per row `(batch,)` or `(batch, 1)` from the given states: logits `(batch, 1, vocab)` and
        the new states; with `return_value=True` also `state_summary` and `value` of the new state (through
        the `summarize` and `value` graphs, as `CRSMForCausalLM.forward(return_value=True)`). The tokens
        are checked as the PyTorch model checks its ids."""
        tokens = torch.as_tensor(input_ids)
        ids = self._input_ids(tokens.reshape(-1, 1) if tokens.dim() == 1 else tokens)
        rows = {"input_ids": ids.shape[0], "conv_states": conv_states.shape[0], "ssm_states": ssm_states.shape[0]}
        if ids.shape[1] != 1 or len(set(rows.values())) != 1:
            raise ValueError(
                f"`step` takes one token per row, `(batch,)` or `(batch, 1)`, and the states of as many rows; got "
                f"input_ids of shape {tuple(tokens.shape)} and rows {rows}."
            )
        out = self._step(ids, conv_states, ssm_states)
        return self._add_value(out) if return_value else out

    def _step(self, ids: np.ndarray, conv_states: np.ndarray, ssm_states: np.ndarray) -> dict:
        """`step` for checked ids `(batch, 1)` (the decoding loops' own tokens)."""
        feed = {"input_ids": ids, "conv_states": conv_states, "ssm_states": ssm_states}
        return dict(zip(("logits", "conv_states", "ssm_states"), self.step_session.run(None, feed)))

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
        ids = self._input_ids(input_ids)
        mask = np.ones_like(ids) if attention_mask is None else as_numpy(attention_mask).astype(np.int64, copy=False)
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

    @structured_options
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
        logits_processor: Optional[list] = None,
        stopping_criteria: Optional[list] = None,
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
            logits_processor, stopping_criteria: transformers' processors and criteria, called as
                `model.generate` calls them (with deliberation: processors only, on the search's priors).
            `grammar=`, `json_schema=`, `regex=`, `python_code=True`, `hide_thoughts=`, `entropy_monitor=`,
                `stop_strings=` with `tokenizer=`: structured decoding (`hf_reason.decoding.generate`).
        """
        if deliberation is not None:
            if stopping_criteria:
                raise ValueError("`stopping_criteria` cannot be combined with `deliberation`.")
            if deliberation != "mcts":
                raise ValueError(f"`deliberation` must be None or 'mcts', got {deliberation!r}.")
            missing = [name for name in self.head_file_names if name not in self.head_sessions]
            if missing:
                raise ValueError(
                    f"Deliberation needs the head graphs {missing}, which this export lacks; re-export the "
                    "model with `hf-reason export`."
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
                logits_processor=logits_processor,
                **mcts_kwargs,
            )
        input_ids = self._input_ids(input_ids)
        check_generate_args(input_ids, max_new_tokens, do_sample, temperature)
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        pad = resolve_pad_token_id(pad_token_id, self.config, eos)
        batch_size = input_ids.shape[0]
        if prefilled is not None:
            shapes = {
                key: getattr(prefilled.get(key), "shape", None) for key in ("logits", "conv_states", "ssm_states")
            }
            if any(shape is None or shape[0] != batch_size for shape in shapes.values()) or len(shapes["logits"]) != 2:
                raise ValueError(
                    "`prefilled` must be this wrapper's `prefill(input_ids)` output (last-position logits "
                    f"(batch, vocab) and the states, {batch_size} rows); got shapes {shapes}."
                )
        states = prefilled if prefilled is not None else self.prefill(input_ids, attention_mask)

        def advance(tokens: np.ndarray) -> np.ndarray:
            nonlocal states
            states = self._step(tokens.reshape(-1, 1), states["conv_states"], states["ssm_states"])
            return states["logits"][:, -1]

        return generate_tokens(
            input_ids,
            states["logits"],
            advance,
            max_new_tokens,
            do_sample,
            temperature,
            top_k,
            eos,
            pad,
            seed,
            logits_processor,
            stopping_criteria,
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
        feed = {key: as_numpy(value) for key, value in feed.items()}
        return [torch.from_numpy(a) for a in self.ort_model.head_sessions[name].run(None, feed)]

    def __call__(self, input_ids, cache_params=None, cache_position=None, use_cache=True, **kwargs):
        from types import SimpleNamespace

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


__all__ = ["ORTCRSMForCausalLM"]
