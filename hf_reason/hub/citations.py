# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Papers a card cites for its training method and PEFT method.

The BibTeX lives in `citations.bib`, shipped with the package; `CITATIONS` maps each key of that
file (a training method, or a PEFT type as PEFT spells it) to its entry. A family's own papers are
part of its card template.
"""

import re
from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Optional

from ..file_io import PathLike


CITATIONS_FILE = "citations.bib"
# An entry's key stands on the line before it, as a BibTeX comment, so the file stays plain BibTeX.
_KEY_LINE = re.compile(r"^% key: (\S+)[ \t]*$", flags=re.M)


def load_citations(path: Optional[PathLike] = None) -> dict[str, str]:
    """Reads a citations file: key -> BibTeX entry, in the file's order.

    Args:
        path: the file to read; defaults to the `citations.bib` shipped in `hf_reason.hub`.

    Each entry follows a line `% key: <key>`; what precedes the first such line is a comment. An
    entry is the text up to the next key line, without the blank lines around it, and must be one
    BibTeX entry (`@type{...}`); keys must be unique.
    """
    source = files(__package__).joinpath(CITATIONS_FILE) if path is None else Path(path)
    preamble, *pairs = _KEY_LINE.split(source.read_text(encoding="utf-8"))
    if not pairs or any(line.strip() and not line.startswith("%") for line in preamble.splitlines()):
        raise ValueError(f"Every entry of {source} must follow a line `% key: <key>` naming its key.")
    citations = {}
    for key, entry in zip(pairs[::2], pairs[1::2]):
        entry = entry.strip()
        if key in citations:
            raise ValueError(f"Citation key {key!r} appears twice in {source}; each key must be unique.")
        if not (entry.startswith("@") and entry.endswith("}")):
            raise ValueError(f"Citation {key!r} in {source} must be one BibTeX entry (`@type{{...}}`), got {entry!r}.")
        citations[key] = entry
    return citations


CITATIONS: dict[str, str] = load_citations()


def training_methods(training: Optional[Mapping]) -> list[str]:
    """The training methods to cite for a card's training summary (`training_summary`), by its config class.

    GRPO for `GRPOConfig` and subclasses (ours: `ReasoningGRPOConfig`); DPO for `DPOConfig` and
    subclasses, plus LD-DPO when stock `ld_alpha` is set or for `LengthBalancedDPOConfig` (its
    segment-wise weights extend LD-DPO's). Summaries without a config class name cite nothing.
    """
    training = training or {}
    config = str(training.get("trainer_config") or "")
    methods = []
    if config.endswith("GRPOConfig"):
        methods.append("grpo")
    elif config.endswith("DPOConfig"):
        methods.append("dpo")
        if config == "LengthBalancedDPOConfig" or training.get("ld_alpha") is not None:
            methods.append("ld-dpo")
    return methods


def peft_methods(adapter_config: Mapping) -> list[str]:
    """The PEFT method papers to cite for an adapter config: by `peft_type` (DoRA too when `use_dora`)."""
    peft_type = str(adapter_config.get("peft_type") or "").upper()
    methods = [peft_type] if peft_type in CITATIONS else []
    if peft_type == "LORA" and adapter_config.get("use_dora"):
        methods.append("DORA")
    return methods


def _citations(keys: Sequence[str]) -> str:
    """The BibTeX of `keys`, each once, in order, one entry per line block (a card's `method_citations`)."""
    return "".join(CITATIONS[k] + "\n" for k in dict.fromkeys(keys))
