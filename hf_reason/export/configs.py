# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Optimum ONNX configurations for hf-reason's model families.

Each config names the graph's inputs / outputs with their dynamic axes and generates the dummy
inputs the tracer needs; they plug into `optimum.exporters.onnx.export`. Importing this module
(which `import hf_reason.export` does) registers them with Optimum's `TasksManager`, and the
exporters obtain them back through `TasksManager.get_exporter_config_constructor` (`onnx_config`
below), so the registration is what the export actually uses:

| model type (TasksManager) | task                                             | graph                |
|---------------------------|--------------------------------------------------|----------------------|
| `trm`                     | `token-classification`                           | TRM supervision step |
| `trm_solve`               | `token-classification`                           | TRM fixed-step solve |
| `meta_attention`          | `text-generation`, `text-generation-with-past`   | decoder (+ KV cache) |
| `crsm`                    | `text-generation`                                | CRSM single-token step |
| `crsm_prefill`            | `text-generation`                                | CRSM prompt prefill  |

The second graphs of TRM and CRSM have model types of their own because a TasksManager entry is
one config per (model type, task) and Optimum's task names are a fixed list. `main_export` itself
cannot be used: it refuses model classes outside the `transformers` package.
"""

from collections import OrderedDict

from optimum.exporters.onnx import OnnxConfig
from optimum.exporters.tasks import TasksManager
from optimum.utils import DummyInputGenerator, NormalizedConfig


_register_onnx = TasksManager.create_register("onnx", overwrite_existing=True)

# Opset 18 is Optimum's default; ONNX Runtime >= 1.14 runs it and the INT4 MatMulNBits op needs
# nothing newer.
DEFAULT_OPSET = 18


class TRMDummyInputGenerator(DummyInputGenerator):
    """Dummy puzzles and carries with the shapes a `TRMConfig` fixes (only the batch varies)."""

    SUPPORTED_INPUT_NAMES = (
        "input_ids",
        "puzzle_identifiers",
        "carry_y",
        "carry_z",
        "carry_steps",
        "carry_halted",
        "carry_q_hidden",
    )

    def __init__(self, task: str, normalized_config: NormalizedConfig, batch_size: int = 2, **kwargs):
        self.task = task
        self.config = normalized_config.config
        self.batch_size = batch_size

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        config = self.config
        total_len = config.seq_len + config.puzzle_prefix_len
        if input_name == "input_ids":
            return self.random_int_tensor(
                [self.batch_size, config.seq_len], max_value=config.vocab_size, framework=framework, dtype=int_dtype
            )
        if input_name == "puzzle_identifiers":
            return self.random_int_tensor(
                [self.batch_size], max_value=config.num_puzzle_identifiers, framework=framework, dtype=int_dtype
            )
        if input_name in ("carry_y", "carry_z"):
            return self.random_float_tensor(
                [self.batch_size, total_len, config.hidden_size], framework=framework, dtype=float_dtype
            )
        if input_name == "carry_q_hidden":
            return self.random_float_tensor(
                [self.batch_size, config.q_head_hidden_size], framework=framework, dtype=float_dtype
            )
        if input_name == "carry_steps":
            return self.random_int_tensor(
                [self.batch_size], max_value=config.halt_max_steps, framework=framework, dtype=int_dtype
            )
        # Mixed halted flags so both branches of the reset are exercised by validation.
        halted = self.random_int_tensor(
            [self.batch_size], min_value=0, max_value=2, framework=framework, dtype="int64"
        )
        return halted.bool() if framework == "pt" else halted.astype(bool)


@_register_onnx("trm", "token-classification", library_name="transformers")
class TRMStepOnnxConfig(OnnxConfig):
    """One TRM supervision step (`TRMStepForExport`): puzzle + carry in, logits + halting + carry out."""

    NORMALIZED_CONFIG_CLASS = NormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (TRMDummyInputGenerator,)
    DEFAULT_ONNX_OPSET = DEFAULT_OPSET
    ATOL_FOR_VALIDATION = 1e-4

    @property
    def inputs(self):
        batch = {0: "batch_size"}
        inputs = OrderedDict(input_ids=batch, carry_y=batch, carry_z=batch, carry_steps=batch, carry_halted=batch)
        if self._config.puzzle_emb_ndim:
            inputs["puzzle_identifiers"] = batch
        if getattr(self._config, "q_head_type", "linear") == "gru":
            inputs["carry_q_hidden"] = batch
        return inputs

    @property
    def outputs(self):
        batch = {0: "batch_size"}
        outputs = OrderedDict(
            logits=batch,
            q_halt_logits=batch,
            q_continue_logits=batch,
            next_y=batch,
            next_z=batch,
            next_steps=batch,
            next_halted=batch,
        )
        if getattr(self._config, "q_head_type", "linear") == "gru":
            outputs["next_q_hidden"] = batch
        return outputs


@_register_onnx("trm_solve", "token-classification", library_name="transformers")
class TRMSolveOnnxConfig(TRMStepOnnxConfig):
    """The whole fixed-step TRM solve (`TRMSolveForExport`): puzzles in, answers and step counts out."""

    @property
    def inputs(self):
        inputs = OrderedDict(input_ids={0: "batch_size"})
        if self._config.puzzle_emb_ndim:
            inputs["puzzle_identifiers"] = {0: "batch_size"}
        return inputs

    @property
    def outputs(self):
        return OrderedDict(
            predictions={0: "batch_size"},
            steps={0: "batch_size"},
            step_predictions={1: "batch_size"},
            q_halt_logits={1: "batch_size"},
        )


# ------------------------------------------------------------------------------ meta-attention

from optimum.exporters.onnx.model_configs import GPT2OnnxConfig  # noqa: E402


@_register_onnx("meta_attention", "text-generation", "text-generation-with-past", library_name="transformers")
class MetaAttentionOnnxConfig(GPT2OnnxConfig):
    """The meta-attention decoder: GPT-2's inputs and KV cache (`past_key_values.{i}.key/value` in,
    `present.{i}.key/value` out) with the meta-attention module inside the graph."""

    DEFAULT_ONNX_OPSET = DEFAULT_OPSET
    ATOL_FOR_VALIDATION = 1e-4

    @property
    def inputs(self):
        # GPT-2's config adds a `position_ids` input for the text-generation task; the meta-attention
        # model derives positions from `attention_mask` itself (exact under left padding), so the
        # graph takes none and the wrappers never have to compute them.
        inputs = super().inputs
        inputs.pop("position_ids", None)
        return inputs


# ------------------------------------------------------------------------------------- CRSM


class CRSMDummyInputGenerator(DummyInputGenerator):
    """Token ids and stacked recurrent states with the shapes a `CRSMConfig` fixes."""

    SUPPORTED_INPUT_NAMES = ("input_ids", "attention_mask", "conv_states", "ssm_states")

    def __init__(
        self, task: str, normalized_config: NormalizedConfig, batch_size: int = 2, sequence_length: int = 32, **kwargs
    ):
        self.task = task
        self.config = normalized_config.config
        self.batch_size = batch_size
        self.sequence_length = sequence_length

    def generate(self, input_name: str, framework: str = "pt", int_dtype: str = "int64", float_dtype: str = "fp32"):
        config = self.config
        if input_name == "input_ids":
            return self.random_int_tensor(
                [self.batch_size, self.sequence_length],
                max_value=config.vocab_size,
                framework=framework,
                dtype=int_dtype,
            )
        if input_name == "attention_mask":
            return self.random_mask_tensor(
                [self.batch_size, self.sequence_length], padding_side="left", framework=framework, dtype=int_dtype
            )
        last = config.conv_kernel if input_name == "conv_states" else config.state_size
        shape = [self.batch_size, config.num_hidden_layers, config.intermediate_size, last]
        return self.random_float_tensor(shape, min_value=-1, max_value=1, framework=framework, dtype=float_dtype)


@_register_onnx("crsm_prefill", "text-generation", library_name="transformers")
class CRSMPrefillOnnxConfig(OnnxConfig):
    """CRSM prompt prefill (`CRSMPrefillForExport`): a chunk of left-padded tokens, its mask and the
    states to continue from in; the last position's logits and the new states out. The
    chunk length is fixed at export (`sequence_length` of the dummy input): the CPU selective scan
    is a Python loop, unrolled by the tracer; longer prompts run chunk after chunk."""

    NORMALIZED_CONFIG_CLASS = NormalizedConfig
    DUMMY_INPUT_GENERATOR_CLASSES = (CRSMDummyInputGenerator,)
    DEFAULT_ONNX_OPSET = DEFAULT_OPSET
    ATOL_FOR_VALIDATION = 1e-4

    @property
    def inputs(self):
        batch = {0: "batch_size"}
        return OrderedDict(input_ids=batch, attention_mask=batch, conv_states=batch, ssm_states=batch)

    @property
    def outputs(self):
        batch = {0: "batch_size"}
        return OrderedDict(logits=batch, conv_states_out=batch, ssm_states_out=batch)


class CRSMStepDummyInputGenerator(CRSMDummyInputGenerator):
    def __init__(self, task: str, normalized_config: NormalizedConfig, batch_size: int = 2, **kwargs):
        super().__init__(task, normalized_config, batch_size=batch_size, sequence_length=1)


@_register_onnx("crsm", "text-generation", library_name="transformers")
class CRSMStepOnnxConfig(CRSMPrefillOnnxConfig):
    """CRSM single-token step (`CRSMStepForExport`): token + states in, the prefill's outputs out."""

    DUMMY_INPUT_GENERATOR_CLASSES = (CRSMStepDummyInputGenerator,)

    @property
    def inputs(self):
        batch = {0: "batch_size"}
        return OrderedDict(input_ids=batch, conv_states=batch, ssm_states=batch)


# (model type, task) -> the config class registered for it: what `onnx_config` checks it got back.
REGISTERED = {
    ("trm", "token-classification"): TRMStepOnnxConfig,
    ("trm_solve", "token-classification"): TRMSolveOnnxConfig,
    ("meta_attention", "text-generation"): MetaAttentionOnnxConfig,
    ("meta_attention", "text-generation-with-past"): MetaAttentionOnnxConfig,
    ("crsm", "text-generation"): CRSMStepOnnxConfig,
    ("crsm_prefill", "text-generation"): CRSMPrefillOnnxConfig,
}


def onnx_config(model_type: str, task: str, config, **kwargs) -> OnnxConfig:
    """The registered ONNX config for `(model_type, task)`, built for `config` (kwargs go to its
    constructor), looked up in Optimum's `TasksManager`.

    TasksManager silently substitutes its default model type for an unknown one, so a lost
    registration would export with a wrong config; this raises instead.
    """
    constructor = TasksManager.get_exporter_config_constructor(
        "onnx", model_type=model_type, task=task, library_name="transformers", exporter_config_kwargs=kwargs or None
    )
    expected = REGISTERED.get((model_type, task))
    found = getattr(constructor, "func", constructor)
    while hasattr(found, "func"):  # partial of a partial when kwargs are given
        found = found.func
    if expected is None or found is not expected:
        raise ValueError(
            f"Optimum's TasksManager has no hf-reason ONNX config for model type {model_type!r}, task "
            f"{task!r} (found {getattr(found, '__name__', found)!r}); known: {sorted(REGISTERED)}."
        )
    return constructor(config)


__all__ = [
    "CRSMPrefillOnnxConfig",
    "CRSMStepOnnxConfig",
    "DEFAULT_OPSET",
    "MetaAttentionOnnxConfig",
    "TRMDummyInputGenerator",
    "TRMSolveOnnxConfig",
    "TRMStepOnnxConfig",
    "REGISTERED",
    "onnx_config",
]
