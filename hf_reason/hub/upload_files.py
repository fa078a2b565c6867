# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Which files of a model folder travel to the Hub: an allow-list of what a model needs, and for every
other file the reason it stays behind.

A `save_pretrained` folder is read flat, one level: its config and generation config, its weights as
safetensors (one file, or shards and their index), its tokenizer files and chat template, the code files
its `auto_map` loads, a PEFT adapter's config and weights, and the graphs of an ONNX export with their
external data and report. An ONNX export given as `onnx_dir` is read the same way under `onnx/`. The
card is rendered anew, and the images it shows are added from the folder.

Nothing else is uploaded, and each thing left out is listed with its reason: pickles (loading them runs
code), training state (what trainers declare in `training_state_files`, and `Trainer`'s own state),
files that may hold credentials, code the config does not load, subfolders (checkpoints, logs, runs)
and any other file.

Symbolic links are never followed, and each is listed as left out: a link out of the folder would
upload a file the folder does not hold, and one inside it would upload, under a name the allow-list
accepted, content that this name does not describe and that may change between the listing and the
upload. The Hub stores files, not links: a file that belongs to the model is copied in instead.
"""

import fnmatch
import os
import re
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path


PICKLE_REASON = "pickle file (weights travel as safetensors only)"
STATE_REASON = "temporary or training-state file"
TRAINING_OUTPUT_REASON = "training output, not part of the model"
CREDENTIALS_REASON = "may hold credentials"
CODE_REASON = "code file that the config's auto_map does not load"
FOLDER_REASON = "folder: a model folder is uploaded flat (an ONNX export through onnx_dir / --onnx)"
NOT_NEEDED_REASON = "not a file a model needs (config, weights, tokenizer, code, card, ONNX, adapter)"
LINK_OUTSIDE_REASON = "symbolic link out of the folder (never followed)"
LINK_BROKEN_REASON = "broken symbolic link"
LINK_INSIDE_REASON = "symbolic link (never followed: copy the file in if the model needs it)"
CARD_FOLDER_REASON = "folder: only the images the card shows are uploaded from it"
LINK_REASONS = (LINK_OUTSIDE_REASON, LINK_BROKEN_REASON, LINK_INSIDE_REASON)

# What a model folder needs, by kind (fnmatch patterns of a file name in the folder's top level); the
# ONNX kind takes the export's report too (`allowed_patterns`).
ALLOWED_FILES = {
    "config": ("config.json", "generation_config.json"),
    "weights": ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json"),
    "adapter": ("adapter_config.json", "adapter_model.safetensors"),
    "tokenizer": (
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "tokenizer.model",
        "chat_template.jinja",
        "chat_template.json",
    ),
    "onnx": ("*.onnx", "*.onnx_data", "*.onnx.data"),
}
# An ONNX export folder holds its graphs, their config and the tokenizer, never PyTorch weights.
ONNX_ALLOWED_KINDS = ("config", "tokenizer", "onnx")

# Pickle-based files never travel to the Hub: loading them runs arbitrary code (weights must be
# safetensors) and training state belongs to checkpoints, not to a shared model. Compressed too.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".dill")
_COMPRESSION_SUFFIXES = ("", ".gz", ".bz2", ".xz", ".lzma", ".zst", ".zip")
_TRAINING_DIRS = {".git", "runs", "ema", "__pycache__", ".ipynb_checkpoints", "wandb", "mlruns", "lightning_logs"}
_CREDENTIAL_PATTERNS = (
    "*secret*",
    "*credential*",
    "*password*",
    "*passwd*",
    "*api_key*",
    "*apikey*",
    "*token.txt",
    "token",
    "hf_token",
    ".env",
    ".env.*",
    "*.env",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
)
_ASSET_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
# Markdown images and links, and HTML images, whose target is a relative path.
_CARD_LINK_RES = (
    re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)"),
    re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.IGNORECASE),
)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)


def _is_pickle(name: str) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(s + c) for s in _PICKLE_SUFFIXES for c in _COMPRESSION_SUFFIXES)


def file_reason(
    name: str, allowed: Sequence[str], state_files: Sequence[str], code_files: Collection[str] = ()
) -> str:
    """Why the file `name` of a model folder's top level stays out of the upload; "" when it goes.

    Args:
        name: the file's name.
        allowed: the fnmatch patterns of the files the upload takes (from `ALLOWED_FILES`).
        state_files: the fnmatch patterns of training state (the trainers' `training_state_files`).
        code_files: the code files the config's `auto_map` loads.
    """
    if _matches(name, _CREDENTIAL_PATTERNS):
        return CREDENTIALS_REASON
    if _is_pickle(name):
        return PICKLE_REASON
    if name.endswith(".tmp") or name.startswith(".") or _matches(name, state_files):
        return STATE_REASON
    if name in code_files or _matches(name, allowed):
        return ""
    return CODE_REASON if name.endswith(".py") else NOT_NEEDED_REASON


def allowed_patterns(kinds: Sequence[str]) -> list[str]:
    """The fnmatch patterns of the files of `kinds` (keys of `ALLOWED_FILES`) the upload takes."""
    # imported here: the export package imports Optimum, which only an upload with ONNX files needs
    from ..export.sessions import REPORT_NAME

    patterns = [pattern for kind in kinds for pattern in ALLOWED_FILES[kind]]
    return patterns + [REPORT_NAME] if "onnx" in kinds else patterns


def place(src: Path, dst: Path) -> None:
    """Puts the regular file `src` at `dst`, creating the folders on the way."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:  # a hard link costs no disk for multi-GB weights; copy across file systems
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copyfile(src, dst, follow_symlinks=False)


def _link_reason(path: Path, root: Path) -> str:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing target or a loop of links
        return LINK_BROKEN_REASON
    return LINK_INSIDE_REASON if target.is_relative_to(root.resolve()) else LINK_OUTSIDE_REASON


def copy_allowed_files(
    src: Path,
    dst: Path,
    excluded: list,
    *,
    allowed_kinds: Sequence[str],
    state_files: Sequence[str],
    code_files: Collection[str] = (),
    prefix: str = "",
    skip: Collection[str] = (),
) -> None:
    """Copies the files of `src`'s top level that the allow-list takes into `dst`, and appends
    `(shown path, reason)` to `excluded` for everything else (a folder or a link once, as `name/`).

    Args:
        allowed_kinds: the kinds of `ALLOWED_FILES` this folder may hold.
        state_files, code_files: see `file_reason`.
        prefix: put before the names shown in `excluded` (`"onnx/"`).
        skip: names passed over without a word (the card, rendered anew).
    """
    allowed = allowed_patterns(allowed_kinds)
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        name, path = entry.name, Path(entry.path)
        if name in skip:
            continue
        if entry.is_symlink():
            excluded.append((prefix + name + ("/" if path.is_dir() else ""), _link_reason(path, src)))
        elif entry.is_dir(follow_symlinks=False):
            training = name in _TRAINING_DIRS or name.startswith("checkpoint-")
            excluded.append((prefix + name + "/", TRAINING_OUTPUT_REASON if training else FOLDER_REASON))
        elif not entry.is_file(follow_symlinks=False):
            excluded.append((prefix + name, "not a regular file"))
        else:
            reason = file_reason(name, allowed, state_files, code_files)
            if reason:
                excluded.append((prefix + name, reason))
            else:
                place(path, dst / name)


def copy_card_assets(card_text: str, source: Path, folder: Path, excluded: list) -> list[str]:
    """Copies the images that `card_text` shows by a relative path from `source` into `folder`.

    Only regular files inside `source`, reached through no link, with an image suffix are taken; their
    entries leave `excluded`, and a folder they sit in is listed as partly uploaded. Returns their paths.
    """
    root = source.resolve()
    copied = []
    for pattern in _CARD_LINK_RES:
        for target in pattern.findall(card_text):
            rel = target.split("#", 1)[0].split("?", 1)[0].removeprefix("./")
            if (
                not rel
                or "://" in rel
                or rel.startswith(("/", "mailto:"))
                or not rel.lower().endswith(_ASSET_SUFFIXES)
            ):
                continue
            parts = Path(rel).parts
            if ".." in parts or any((source.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts))):
                continue
            path = source / rel
            if not path.is_file() or not path.resolve().is_relative_to(root) or rel in copied:
                continue
            place(path, folder / rel)
            copied.append(rel)
    folders = {Path(rel).parts[0] + "/" for rel in copied if len(Path(rel).parts) > 1}
    excluded[:] = [
        (shown, CARD_FOLDER_REASON if shown in folders else reason)
        for shown, reason in excluded
        if shown not in copied
    ]
    return copied


__all__ = [
    "ALLOWED_FILES",
    "CARD_FOLDER_REASON",
    "CODE_REASON",
    "CREDENTIALS_REASON",
    "FOLDER_REASON",
    "LINK_BROKEN_REASON",
    "LINK_INSIDE_REASON",
    "LINK_OUTSIDE_REASON",
    "LINK_REASONS",
    "NOT_NEEDED_REASON",
    "ONNX_ALLOWED_KINDS",
    "PICKLE_REASON",
    "STATE_REASON",
    "TRAINING_OUTPUT_REASON",
    "allowed_patterns",
    "copy_allowed_files",
    "copy_card_assets",
    "file_reason",
]
