# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What the app's tabs share: the optional Gradio import, the models each tab runs, figures as images,
and the messages shown in the page.

A tab's handler is a plain function of the page's values that returns the page's new values; a bad input
raises `AppInputError`, which `page_message` turns into a Markdown message in the page (never a
traceback). Models are loaded from a `save_pretrained` folder, an `hf-reason export` folder (ONNX
Runtime), or built small and untrained when no folder is given, which the page says.
"""

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch


APP_EXTRA_HINT = "pip install hf-reason[app]"
UNTRAINED_NOTE = (
    "**Untrained demo model**: no model folder was given, so this tab runs a small randomly initialised "
    "model; its answers are noise. Start the app with a trained checkpoint to see it reason: {flag}."
)
# The untrained demo models: small enough that the app starts in seconds on a laptop CPU.
DEMO_TEXTS = (
    "Plan: read the question, then compute step by step.",
    "Step 1: 2 + 3 = 5. Step 2: 5 * 4 = 20.",
    "Monitor: each step is checked. Diagnosis: no error found.",
    "Reflection: the plan worked. Answer: 20",
    "The quick brown fox jumps over the lazy dog. What is 12 + 30? Answer: 42",
)


class AppInputError(ValueError):
    """A bad value typed into the page; its message is shown to the user as is."""


def require_gradio():
    """Imports and returns `gradio`, or raises `ImportError` naming the extra that installs it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local demo
    try:
        import gradio
    except ImportError as error:
        raise ImportError(f"The hf-reason app needs Gradio: `{APP_EXTRA_HINT}` ({error}).") from None
    return gradio


def check_int_input(value, name: str, low: int, high: int) -> int:
    """`value` as an int in `[low, high]`; `AppInputError` naming `name` otherwise."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AppInputError(f"{name} must be a whole number from {low} to {high}, got {value!r}.") from None
    if not low <= number <= high:
        raise AppInputError(f"{name} must be from {low} to {high}, got {number}.")
    return number


def encode_prompt(tokenizer, prompt) -> torch.LongTensor:
    """The prompt's token ids `(1, length)`; `AppInputError` for an empty prompt."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise AppInputError("the prompt is empty: type a few words for the model to continue.")
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    if ids.shape[1] == 0:
        raise AppInputError("the prompt encodes to no tokens: type a few words for the model to continue.")
    return ids


def page_message(error: Exception) -> str:
    """The Markdown shown in the page for an error raised by a handler."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (AppInputError, ValueError)):
        return f"**Input error:** {text}"
    return f"**Unexpected error** ({type(error).__name__}): {text}"


def click_refilling_table(button, handler, inputs: list, outputs: list, table):
    """`button.click(handler, inputs, outputs)`, with `table` (one of `outputs`, a `gr.Dataframe`) emptied first.

    Gradio 6.17's Dataframe lays its rows out again only when it goes from no rows to some
    (gradio-app/gradio#13611, fixed in releases that need huggingface_hub 1, which transformers 4.57 does
    not take): refilled with another number of rows, it would keep showing the old number.
    """
    return button.click(lambda: [], None, table, queue=False).then(handler, inputs, outputs)


def figure_to_image(figure):
    """A matplotlib figure as a PIL image (in memory; the figure is closed)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def pyplot():
    """`matplotlib.pyplot` on the file-only Agg backend (the app never opens a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_onnx_export(folder: Union[str, os.PathLike]) -> bool:
    """Whether `folder` is an `hf-reason export` folder (run on ONNX Runtime)."""
    from ..export.sessions import REPORT_NAME

    return Path(folder, REPORT_NAME).is_file()


@dataclass
class LoadedModel:
    """A model a tab runs, with what the page says about it.

    Attributes:
        model: the PyTorch model or its ONNX Runtime wrapper.
        tokenizer: the tokenizer of a language model (None for TRM).
        source: the folder it was loaded from, or None for the untrained demo model.
        runtime: `"pytorch"` or `"onnxruntime"`.
    """

    model: Any
    tokenizer: Any = None
    source: Optional[str] = None
    runtime: str = "pytorch"

    @property
    def untrained(self) -> bool:
        return self.source is None

    def describe(self, flag: str) -> str:
        """A line for the page: where the model comes from (or that it is untrained)."""
        if self.untrained:
            return UNTRAINED_NOTE.format(flag=flag)
        where = "ONNX Runtime" if self.runtime == "onnxruntime" else "PyTorch"
        return f"Model: `{self.source}` on {where} ({type(self.model).__name__})."


def _model_type(folder: Path) -> str:
    from ..file_io import read_json_object

    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{folder} has no config.json: expected a save_pretrained or `hf-reason export` folder.")
    return str(read_json_object(config_path).get("model_type"))


def load_model(folder: Union[str, os.PathLike], family: str) -> LoadedModel:
    """Loads `family` (`"trm"`, `"crsm"` or `"meta_attention"`) from a `save_pretrained` folder, or from an
    `hf-reason export` folder on ONNX Runtime; `ValueError` naming the folder when it holds another family."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder (expected a save_pretrained or `hf-reason export` folder).")
    model_type = _model_type(folder)
    if model_type != family:
        raise ValueError(f"{folder} holds a {model_type!r} model; this option takes a {family!r} model.")
    onnx = is_onnx_export(folder)
    if family == "trm":
        if onnx:
            from ..export import ORTTRMForPuzzleSolving as cls
        else:
            from ..models.trm import TRMForPuzzleSolving as cls
        model = cls.from_pretrained(folder)
        return LoadedModel(model, None, str(folder), "onnxruntime" if onnx else "pytorch")
    from transformers import AutoTokenizer

    if onnx:
        from ..export import ORTCRSMForCausalLM, ORTMetaAttentionForCausalLM

        cls = ORTCRSMForCausalLM if family == "crsm" else ORTMetaAttentionForCausalLM
    else:
        from ..models.crsm import CRSMForCausalLM
        from ..models.meta_attention import MetaAttentionForCausalLM

        cls = CRSMForCausalLM if family == "crsm" else MetaAttentionForCausalLM
    model = cls.from_pretrained(folder)
    if not onnx:
        model.eval()
    return LoadedModel(model, AutoTokenizer.from_pretrained(folder), str(folder), "onnxruntime" if onnx else "pytorch")


def demo_tokenizer():
    """The byte-level BPE tokenizer of the untrained demo language models (trained locally, in a second)."""
    from ..data.text import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=320, texts=list(DEMO_TEXTS) * 4)
    tokenizer.padding_side = "left"
    return tokenizer


def demo_trm(puzzle: str) -> LoadedModel:
    """A small untrained TRM for `puzzle` (`"sudoku"`: 9x9; `"maze"`: 15x15)."""
    from ..data.maze import MAZE_VOCAB_SIZE
    from ..data.sudoku import sudoku_vocab_size
    from ..models.trm import TRMConfig, TRMForPuzzleSolving

    vocab, seq_len = (sudoku_vocab_size(9), 81) if puzzle == "sudoku" else (MAZE_VOCAB_SIZE, 15 * 15)
    torch.manual_seed(0)
    config = TRMConfig(
        vocab_size=vocab,
        seq_len=seq_len,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=1,
        H_cycles=2,
        L_cycles=2,
        halt_max_steps=6,
        halt_exploration_prob=0.0,
    )
    return LoadedModel(TRMForPuzzleSolving(config).eval())


def demo_crsm(tokenizer) -> LoadedModel:
    """A small untrained CRSM over the demo tokenizer."""
    from ..models.crsm import CRSMConfig, CRSMForCausalLM

    torch.manual_seed(0)
    config = CRSMConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        state_size=8,
        num_hidden_layers=2,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return LoadedModel(CRSMForCausalLM(config).eval(), tokenizer)


def demo_meta_attention(tokenizer) -> LoadedModel:
    """A small untrained meta-attention GPT-2 over the demo tokenizer."""
    from ..models.meta_attention import MetaAttentionConfig, MetaAttentionForCausalLM

    torch.manual_seed(0)
    config = MetaAttentionConfig(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=2,
        meta_hidden_size=16,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return LoadedModel(MetaAttentionForCausalLM(config).eval(), tokenizer)


@dataclass
class AppModels:
    """The models of every tab.

    Attributes:
        sudoku, maze: TRMs (the tab of each is chosen by its config's vocabulary and length).
        crsm: the CRSM language model and its tokenizer.
        meta_attention: the meta-attention language model and its tokenizer.
        critic: the self-critic (`MetaAttentionForSequenceScoring`) that scores the meta-attention reports.
    """

    sudoku: LoadedModel
    maze: LoadedModel
    crsm: LoadedModel
    meta_attention: LoadedModel
    critic: LoadedModel


def load_app_models(
    trm: Union[None, str, os.PathLike, list] = None,
    crsm: Optional[Union[str, os.PathLike]] = None,
    meta: Optional[Union[str, os.PathLike]] = None,
    critic: Optional[Union[str, os.PathLike]] = None,
) -> AppModels:
    """Loads the app's models; every family without a folder gets its small untrained demo model.

    Args:
        trm: one or more TRM folders (`save_pretrained` or `hf-reason export`); a Sudoku solver goes to the
            Sudoku tab and a maze solver to the maze tab (by their configs' vocabulary and length).
        crsm, meta: a CRSM / meta-attention folder, with its tokenizer.
        critic: a `MetaAttentionForSequenceScoring` folder (the self-critic; default: its score is not shown).
    """
    from ..cli.puzzles import puzzle_spec

    trms = {}
    for folder in [trm] if isinstance(trm, (str, os.PathLike)) else list(trm or []):
        loaded = load_model(folder, "trm")
        spec = puzzle_spec(loaded.model.config)
        if spec.format not in ("sudoku", "maze") or (spec.format == "sudoku" and spec.side != 9):
            raise ValueError(
                f"--trm {folder}: {spec.describe()} solves neither 9x9 Sudoku nor mazes, the puzzles the app shows."
            )
        if spec.format in trms:
            raise ValueError(f"--trm {folder}: a second {spec.format} model; give one per puzzle.")
        trms[spec.format] = loaded
    tokenizer = None
    if crsm is None or meta is None:
        tokenizer = demo_tokenizer()
    meta_model = load_model(meta, "meta_attention") if meta is not None else demo_meta_attention(tokenizer)
    return AppModels(
        sudoku=trms.get("sudoku") or demo_trm("sudoku"),
        maze=trms.get("maze") or demo_trm("maze"),
        crsm=load_model(crsm, "crsm") if crsm is not None else demo_crsm(tokenizer),
        meta_attention=meta_model,
        critic=load_critic(critic, meta_model),
    )


def load_critic(folder: Optional[Union[str, os.PathLike]], meta: LoadedModel) -> LoadedModel:
    """The self-critic from `folder` (with the meta-attention model's tokenizer), or an untrained one of the
    meta-attention model's shape."""
    from ..models.meta_attention import MetaAttentionConfig, MetaAttentionForSequenceScoring

    if folder is not None:
        if _model_type(Path(folder)) != "meta_attention":
            raise ValueError(f"--critic {folder}: expected a meta-attention self-critic folder.")
        return LoadedModel(MetaAttentionForSequenceScoring.from_pretrained(folder).eval(), meta.tokenizer, str(folder))
    torch.manual_seed(0)
    config = MetaAttentionConfig(**{**meta.model.config.to_dict(), "architectures": None})
    return LoadedModel(MetaAttentionForSequenceScoring(config).eval(), meta.tokenizer)
