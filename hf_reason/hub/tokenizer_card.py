# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The card of a tokenizer pushed on its own (`build_tokenizer_card`), from its saved JSON files."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from huggingface_hub import ModelCard

from ..file_io import PathLike
from .card_helpers import _metadata, _read_json, _version
from .card_inputs import _training_section, describe_datasets
from .families import BASE_TAGS, TOKENIZER_TEMPLATE, template_path


def _tokenizer_algorithm(tokenizer_json: Mapping) -> tuple[str, bool]:
    """(the `tokenizers` model type, whether it works on bytes) from a `tokenizer.json`."""

    def types(node) -> list[str]:
        if not isinstance(node, Mapping):
            return []
        nested = node.get("pretokenizers") or node.get("normalizers") or []
        return [str(node.get("type"))] + [t for n in nested for t in types(n)]

    model = tokenizer_json.get("model") or {}
    byte_level = "ByteLevel" in types(tokenizer_json.get("pre_tokenizer")) or bool(model.get("byte_fallback"))
    return str(model.get("type") or "unknown"), byte_level


def build_tokenizer_card(
    tokenizer_dir: PathLike,
    *,
    repo_id: Optional[str] = None,
    datasets=None,
    license: str = "apache-2.0",
    language=None,
    tags: Sequence[str] = (),
    model_summary: Optional[str] = None,
    build_description: Optional[str] = None,
) -> ModelCard:
    """The card of a tokenizer pushed on its own: what it is, how it was built and how to load it.

    Reads only the saved JSON files of `tokenizer_dir` (`tokenizer_config.json`, `tokenizer.json`);
    no tokenizer code runs. `datasets` (Hub ids) are the texts it was trained on, when known;
    `build_description` replaces the generic "how it was built" paragraph.
    """
    folder = Path(tokenizer_dir)
    config = _read_json(folder / "tokenizer_config.json") or {}
    tokenizer_json = _read_json(folder / "tokenizer.json")
    tokenizer_class = config.get("tokenizer_class") or "unknown"
    rows = {"tokenizer_class": tokenizer_class}
    algorithm, byte_level = ("unknown", False)
    if tokenizer_json is not None:
        from tokenizers import Tokenizer

        algorithm, byte_level = _tokenizer_algorithm(tokenizer_json)
        rows["algorithm"] = algorithm + (" (byte-level)" if byte_level else "")
        rows["vocab_size"] = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    elif (folder / "vocab.json").is_file():
        rows["vocab_size"] = len(_read_json(folder / "vocab.json"))
    special = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    rows.update(special)
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens")
    if extra:
        rows["additional_special_tokens"] = list(extra)
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and max_length < 10**9:  # transformers writes ~1e30 for "no limit"
        rows["model_max_length"] = max_length
    for key in ("padding_side", "add_bos_token", "add_eos_token"):
        if key in config:
            rows[key] = config[key]
    dataset_rows = describe_datasets(datasets)
    model_id = repo_id or "<your-org>/tokenizer"
    if build_description is None:
        kind = f"a `{algorithm}` model" if algorithm != "unknown" else "a tokenizer model"
        build_description = (
            f"Built with the 🤗 [`tokenizers`](https://github.com/huggingface/tokenizers) library as {kind}"
            + (" over bytes (GPT-2 style), so every string encodes without unknown tokens" if byte_level else "")
            + f", and saved through transformers as `{tokenizer_class}`. hf-reason trains its tokenizers locally "
            "with `hf_reason.data.text.build_tokenizer(vocab_size, texts, extra_special_tokens)`, which is "
            "deterministic: the same texts and size give the same vocabulary."
        )
    if dataset_rows:
        build_description += "\n\n" + _training_section({}, dataset_rows)
    unk = config.get("unk_token")
    coverage = (
        "Byte-level: every string encodes, but text unlike the training texts splits into many short tokens."
        if byte_level
        else f"Text outside the vocabulary maps to the unknown token{f' `{unk}`' if unk else ''} and loses information."
    )
    card_data = _metadata(
        model_name=model_id.split("/")[-1],
        library_name="transformers",
        tags=[*BASE_TAGS, "tokenizer", *tags],
        dataset_rows=dataset_rows,
        results=[],
        task_type="other",
        task_name=None,
        license=license,
        pipeline_tag=None,
        base_model=None,
        language=language,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(TOKENIZER_TEMPLATE)),
        model_name=model_id.split("/")[-1],
        model_summary=model_summary or f"A {rows.get('vocab_size', 'unknown')}-token `{tokenizer_class}` tokenizer.",
        hf_reason_version=_version(),
        details_table="| field | value |\n| --- | --- |\n"
        + "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in rows.items()),
        build_section=build_description,
        repo_id_literal=repr(model_id),
        coverage_note=coverage,
    )
