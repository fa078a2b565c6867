# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""ONNX Runtime sessions, the export report, and what the families' ONNX Runtime wrappers share.

An export folder is finished when its report, `REPORT_NAME`, is there: `export_pretrained` writes it
last, and `read_export_report` refuses a folder without one or of another family. Sessions are
called with numpy arrays directly (no IO binding): on CPU that is already zero-copy for contiguous
arrays, and it keeps the per-call overhead to a few tens of microseconds.
"""

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np
import torch

from ..decoding.generation import STRUCTURED_ARGUMENTS
from ..decoding.generation import generate as generate_structured
from ..file_io import PathLike
from ..models.crsm.mcts import check_prompt_batch

# The model folders hold copies of this one check (utils/check_copies.py); the wrappers run it on
# their inputs, so that ONNX Runtime refuses what the PyTorch models refuse, with the same errors.
from ..models.trm.modeling_trm import check_ids


OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
# The one name of an export's report, for the pipeline that writes it and the wrappers that read it.
REPORT_NAME = "export_report.json"


def check_optimization_level(optimization_level: str) -> str:
    if optimization_level not in OPTIMIZATION_LEVELS:
        raise ValueError(
            f"`optimization_level` must be one of {', '.join(repr(o) for o in OPTIMIZATION_LEVELS)}; "
            f"got {optimization_level!r}."
        )
    return optimization_level


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
            Runtime's default, on). Off helps when other processes share the cores, whose time the
            spinning threads take; on idle cores spinning saves the wake-up latency of every op
            (docs/onnx.md, "Session options").
    """
    import onnxruntime as ort

    check_optimization_level(optimization_level)
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


def as_numpy(tensor) -> np.ndarray:
    """A contiguous numpy array of a torch tensor or array-like, as a session takes it."""
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


def report_optimization_level(optimization_level: Optional[str], report: dict) -> str:
    """The level the export's parity was checked at, unless the caller asks for another."""
    return optimization_level if optimization_level is not None else report.get("optimization_level", "all")


class ORTModelForExport:
    """
    What the families' ONNX Runtime wrappers share: loading an `hf-reason export` folder.

    A subclass names its `family`, its `config_class`, the `graph_files` it can load and the
    `required_files` among them, and builds itself from the sessions of the graphs an export lists
    in `_from_sessions`.
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type]
    graph_files: ClassVar[tuple] = ()
    required_files: ClassVar[tuple] = ()

    @classmethod
    def from_pretrained(
        cls,
        model_dir: PathLike,
        optimization_level: Optional[str] = None,
        num_threads: Optional[int] = None,
        providers: Optional[list] = None,
        allow_spinning: Optional[bool] = None,
    ):
        """Loads an `hf-reason export` folder: the graphs its `export_report.json` lists.

        Args:
            optimization_level: ONNX Runtime graph optimisations (default: the report's, the level
                the export's parity was checked at).
            num_threads, providers, allow_spinning: the sessions' settings (`create_session`).
        """
        model_dir = Path(model_dir)
        report = read_export_report(model_dir, cls.family)
        return cls.from_files(
            model_dir,
            report["files"],
            report_optimization_level(optimization_level, report),
            num_threads=num_threads,
            providers=providers,
            allow_spinning=allow_spinning,
            **cls._report_arguments(report),
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
        **kwargs,
    ):
        """Sessions for the named graph files of `model_dir` only (what `from_pretrained` and the
        export's parity check use); `kwargs` go to the wrapper (`_from_sessions`)."""
        model_dir = Path(model_dir)
        config = config if config is not None else cls.config_class.from_pretrained(model_dir)
        cls._check_files(model_dir, files)
        sessions = {
            name: create_session(model_dir / name, optimization_level, num_threads, providers, allow_spinning)
            for name in cls.graph_files
            if name in files
        }
        return cls._from_sessions(config, sessions, **kwargs)

    @classmethod
    def _report_arguments(cls, report: dict) -> dict:
        """Arguments of `_from_sessions` that the export's report gives (none by default)."""
        return {}

    @classmethod
    def _check_files(cls, model_dir: Path, files) -> None:
        for name in cls.required_files:
            if name not in files:
                raise FileNotFoundError(f"The export in {model_dir} lists no {name}.")

    @classmethod
    def _from_sessions(cls, config, sessions: dict, **kwargs):
        raise NotImplementedError

    def _input_ids(self, input_ids) -> np.ndarray:
        """`input_ids` `(batch_size, sequence_length)` as the int64 array a session takes, checked as the
        PyTorch models check theirs (`check_ids`: an integer dtype, ids below `config.vocab_size`),
        with the same errors. A session would wrap a negative id around, or read past its table."""
        ids = torch.as_tensor(input_ids)
        if ids.dim() != 2:
            raise ValueError(f"`input_ids` must have shape (batch_size, sequence_length); got {tuple(ids.shape)}.")
        return as_numpy(check_ids(ids, "input_ids", self.config.vocab_size, "vocab_size"))


def check_generate_args(input_ids: np.ndarray, max_new_tokens, do_sample: bool, temperature: float) -> None:
    """The wrappers' `generate` arguments: at least one prompt in the checked `input_ids` (the PyTorch
    models' `check_prompt_batch`), `max_new_tokens >= 1`, and a finite `temperature > 0` when sampling."""
    check_prompt_batch(input_ids=input_ids)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be an integer >= 1, got {max_new_tokens!r}.")
    if do_sample and not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"`temperature` must be a finite number > 0 when sampling, got {temperature!r}.")


def resolve_pad_token_id(pad_token_id: Optional[int], config, eos: Optional[int]) -> Optional[int]:
    """`pad_token_id`, else the config's, else the EOS token (as transformers' generation does)."""
    if pad_token_id is not None:
        return pad_token_id
    return config.pad_token_id if config.pad_token_id is not None else eos


def generate_tokens(
    input_ids,
    logits: np.ndarray,
    advance: Callable[[np.ndarray], np.ndarray],
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_k: int,
    eos: Optional[int],
    pad: Optional[int],
    seed: Optional[int],
    logits_processor: Optional[list] = None,
    stopping_criteria: Optional[list] = None,
) -> torch.LongTensor:
    """The decoding loop of the LM wrappers' `generate`: prompt + generated tokens `(batch, prompt + new)`.

    Picks each row's next token from `logits` (last position, `(batch, vocab)`), then
    `advance(tokens)` runs them and returns the logits after them. Rows that emitted `eos` (or that a
    stopping criterion stopped) are filled with `pad` from then on; the loop stops when every row has
    finished or after `max_new_tokens`.

    `logits_processor` and `stopping_criteria` are transformers' (called with the torch `input_ids`
    so far and the float32 scores), as `model.generate` calls them: a grammar's mask, an entropy
    monitor and its stop.
    """
    rng = np.random.default_rng(seed)
    input_ids = as_numpy(input_ids).astype(np.int64, copy=False)
    finished = np.zeros(input_ids.shape[0], dtype=bool)
    if stopping_criteria and pad is None:
        raise ValueError("`stopping_criteria` need a `pad_token_id` (or `eos_token_id`) to fill the stopped rows.")
    generated = []
    while True:
        if logits_processor or stopping_criteria:
            so_far = torch.from_numpy(np.concatenate([input_ids, *(g[:, None] for g in generated)], 1))
        if logits_processor:
            scores = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
            for processor in logits_processor:
                scores = processor(so_far, scores)
            logits = scores.numpy()
        tokens = next_tokens(logits, do_sample, temperature, top_k, rng)
        if finished.any():
            tokens = np.where(finished, pad, tokens)
        if eos is not None:
            finished |= tokens == eos
        generated.append(tokens)
        if stopping_criteria:
            so_far = torch.from_numpy(np.concatenate([so_far.numpy(), tokens[:, None]], 1))
            for criterion in stopping_criteria:
                finished |= np.asarray(criterion(so_far, None), dtype=bool)
        if finished.all() or len(generated) == max_new_tokens:
            break
        logits = advance(tokens)
    return torch.from_numpy(np.concatenate([input_ids, np.stack(generated, 1)], 1))


def structured_options(generate: Callable) -> Callable:
    """Decorates an LM wrapper's `generate(input_ids, ...)` so that it takes the structured-decoding
    arguments (`STRUCTURED_ARGUMENTS`: `grammar`, `json_schema`, `regex`, `python_code`,
    `hide_thoughts`, `entropy_monitor`, `tokenizer`, ..., and transformers' `stop_strings`, which needs
    the tokenizer). Given any, the call goes through `hf_reason.decoding.generate`, which calls the
    wrapper's `generate` back with the logits processors and stopping criteria they need."""

    @functools.wraps(generate)
    def wrapped(self, input_ids=None, *args, **kwargs):
        options = {
            key: kwargs.pop(key) for key in list(kwargs) if key in STRUCTURED_ARGUMENTS or key == "stop_strings"
        }
        if not options:
            return generate(self, input_ids, *args, **kwargs)
        if args:
            raise TypeError(f"With {sorted(options)}, pass `generate`'s other arguments by keyword.")
        return generate_structured(self, input_ids, **options, **kwargs)

    return wrapped


def next_tokens(logits: np.ndarray, do_sample: bool, temperature: float, top_k: int, rng) -> np.ndarray:
    """Greedy or sampled (temperature, top-k) next tokens from last-position logits `(batch, vocab)`."""
    if not do_sample:
        # The same token as in float64, without the copy (docs/onnx.md, "ONNX Runtime wrappers").
        return logits.argmax(-1)
    scores = logits.astype(np.float64) / temperature
    if top_k:
        kth = np.sort(scores, axis=-1)[:, -top_k][:, None]
        scores = np.where(scores < kth, -np.inf, scores)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs])


__all__ = [
    "OPTIMIZATION_LEVELS",
    "REPORT_NAME",
    "ORTModelForExport",
    "as_numpy",
    "check_generate_args",
    "check_optimization_level",
    "create_session",
    "generate_tokens",
    "next_tokens",
    "read_export_report",
    "report_optimization_level",
    "resolve_pad_token_id",
    "structured_options",
]
