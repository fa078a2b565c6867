# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""STaR (Self-Taught Reasoner, Zelikman et al., 2022) as a resumable loop around TRL's `SFTTrainer`.

Each iteration: sample `num_samples` rationales per training problem from the current model; keep the ones the
verifier accepts; for problems with none kept, *rationalise*: sample again with the answer as a hint in the
prompt and keep verified ones, trained on the prompt *without* the hint; fine-tune (SFT, completion-only loss)
on the kept rationales, from the base model as the paper does (so errors do not compound across iterations);
evaluate on held-out problems.

Resumable with provenance. Iteration ``i`` lives in ``<output_dir>/iter_<i>/``; each of its stages writes one
file atomically when it completes (``samples_<chunk>.json`` per chunk of problems, ``rationalised_<chunk>.json``,
``kept.json``, ``model/`` with ``sft_done.json``, ``eval.json``) and ``provenance.json`` (config, seed, library
versions, the hashes of the stage files) last. A rerun skips complete iterations and, in an interrupted one, the
completed stage files; sampling is seeded per (iteration, chunk), so a resumed run writes what an uninterrupted
one would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from transformers import AutoModelForCausalLM

from hf_reason.file_io import atomic_write_json, read_json_object


__all__ = [
    "StarConfig",
    "evaluate_accuracy",
    "last_saved_checkpoint",
    "load_kept",
    "new_small_gpt2",
    "run_star",
    "sample_completions",
    "sft_on_rows",
]


@dataclass
class StarConfig:
    """Options of [`run_star`].

    Args:
        output_dir (`str`): where the iterations are written (and resumed from).
        num_iterations (`int`, defaults to 3): STaR iterations after the base model (>= 1).
        num_samples (`int`, defaults to 4): rationales sampled per problem and iteration (>= 1).
        rationalize (`bool`, defaults to `True`): rationalise failures with the answer as a hint (False: the
            ablation without rationalisation).
        hint_template (`str`, defaults to `" (Hint: the answer is {answer}.)"`): added to the question (before the
            prompt's last line break) when rationalising; `{answer}` is the gold answer.
        temperature (`float`, defaults to 0.8), max_new_tokens (`int`, defaults to 48): sampling.
        chunk_size (`int`, defaults to 64): problems per sampling chunk (the unit that resumes).
        sft_steps (`int`, defaults to 200), learning_rate (`float`, defaults to 1e-3), batch_size (`int`,
            defaults to 16), max_length (`int`, defaults to 256): the SFT of each iteration.
        restart_from_base (`bool`, defaults to `True`): each iteration fine-tunes the base model (as the paper);
            False continues from the previous iteration's model.
        seed (`int`, defaults to 0).
    """

    output_dir: str
    num_iterations: int = 3
    num_samples: int = 4
    rationalize: bool = True
    hint_template: str = " (Hint: the answer is {answer}.)"
    temperature: float = 0.8
    max_new_tokens: int = 48
    chunk_size: int = 64
    sft_steps: int = 200
    learning_rate: float = 1e-3
    batch_size: int = 16
    max_length: int = 256
    restart_from_base: bool = True
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("num_iterations", "num_samples", "chunk_size", "sft_steps", "batch_size", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StarConfig.{name} must be an int >= 1, got {value!r}")
        if "{answer}" not in self.hint_template:
            raise ValueError(f"StarConfig.hint_template must contain '{{answer}}', got {self.hint_template!r}")


def sample_completions(
    model, tokenizer, prompts: Sequence[str], num_samples: int, temperature: float, max_new_tokens: int, seed: int
) -> list[list[str]]:
    """`num_samples` sampled completions per prompt (left padding; cut at the tokenizer's EOS); temperature 0 is
    greedy (then one sample is repeated)."""
    torch.manual_seed(seed)
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = tokenizer(list(prompts), return_tensors="pt", padding=True, padding_side="left")
    greedy = temperature <= 0
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_k=None if greedy else 0,
            top_p=None if greedy else 1.0,
            num_return_sequences=1 if greedy else num_samples,
            pad_token_id=pad,
            eos_token_id=tokenizer.eos_token_id,
        )
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].size(1) :], skip_special_tokens=False)
    texts = [t.split(tokenizer.eos_token)[0] if tokenizer.eos_token else t for t in texts]
    if tokenizer.pad_token:
        texts = [t.replace(tokenizer.pad_token, "") for t in texts]
    per = 1 if greedy else num_samples
    groups = [texts[i : i + per] for i in range(0, len(texts), per)]
    return [g * num_samples if greedy else g for g in groups]


def evaluate_accuracy(model, tokenizer, problems, verifier, max_new_tokens: int, batch_size: int = 64) -> dict:
    """Greedy accuracy on `problems` (`prompt`, `answer` columns) with per-problem outcomes."""
    outcomes = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        outputs = sample_completions(model, tokenizer, chunk["prompt"], 1, 0.0, max_new_tokens, seed=0)
        outcomes += [bool(verifier(o[0], a)) for o, a in zip(outputs, chunk["answer"])]
    return {"accuracy": sum(outcomes) / max(len(outcomes), 1), "correct": outcomes, "n": len(outcomes)}


def _hint(prompt: str, answer: str, template: str) -> str:
    # the hint joins the question, before the line where the answer starts ("...= ?\nA:" -> "...= ? (Hint...)\nA:")
    head, sep, tail = prompt.rpartition("\n")
    hint = template.format(answer=answer)
    return f"{head}{hint}{sep}{tail}" if sep else prompt + hint


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def new_small_gpt2(tokenizer, hidden_size: int, num_layers: int, n_positions: int = 256):
    """A new GPT-2 sized to `tokenizer` (its vocabulary and special ids), one head per 32 dimensions: the base
    policy the STaR, curation and instruction-following examples train from scratch.

    Args:
        tokenizer: the tokenizer (`pad_token_id`, `eos_token_id`, `bos_token_id` are copied into the config).
        hidden_size (`int`), num_layers (`int`): width and depth.
        n_positions (`int`, defaults to 256): the longest prompt + completion.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer), n_positions=n_positions, n_embd=hidden_size, n_layer=num_layers,
            n_head=max(1, hidden_size // 32), pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        )
    )  # fmt: skip


def last_saved_checkpoint(output_dir: Path) -> Optional[str]:
    """The newest `checkpoint-N` of a stock `Trainer` whose save finished (its `trainer_state.json`, written last,
    is there), or None: a run killed while saving leaves a folder without it."""
    if not output_dir.is_dir():
        return None
    saved = [
        (int(path.name.split("-")[1]), path)
        for path in output_dir.glob("checkpoint-*")
        if path.name.split("-")[1].isdigit() and (path / "trainer_state.json").is_file()
    ]
    return str(max(saved)[1]) if saved else None


def sft_on_rows(base_model_fn, start_from: Optional[Path], tokenizer, rows: list[dict], out: Path, config: StarConfig):
    """Fine-tunes the base (or `start_from`) on the kept rows; resumes from the last checkpoint in `out/trainer`."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(start_from) if start_from is not None else base_model_fn()
    args = SFTConfig(
        output_dir=str(out / "trainer"),
        max_steps=config.sft_steps,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        completion_only_loss=True,
        max_length=config.max_length,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        report_to=[],
        save_strategy="steps",
        save_steps=max(1, config.sft_steps // 4),
        save_total_limit=1,
        seed=config.seed,
        disable_tqdm=True,
        logging_steps=max(1, config.sft_steps // 4),
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    resume = last_saved_checkpoint(out / "trainer")
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(out / "model")
    shutil.rmtree(out / "trainer", ignore_errors=True)
    return trainer.model


def _versions() -> dict:
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": sys.version.split()[0],
    }


def run_star(
    base_model_fn: Callable[[], Any],
    tokenizer,
    train_problems,
    eval_problems,
    verifier: Callable[[str, str], bool],
    config: StarConfig,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run (or resume) STaR; returns one record per iteration (0 = the base model): held-out accuracy and counts.

    Args:
        base_model_fn: builds the base model afresh (each iteration restarts from it unless
            `config.restart_from_base` is False).
        tokenizer: its tokenizer (with a pad token).
        train_problems, eval_problems: `datasets.Dataset`s with `prompt` and `answer` columns (no rationales).
        verifier: ``verifier(completion, answer) -> bool`` (e.g. `hf_reason.data.is_correct`).
        config ([`StarConfig`]).
        log: where progress lines go.
    """
    root = Path(config.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    records = []
    base_eval = root / "iter_0" / "eval.json"
    base_eval.parent.mkdir(exist_ok=True)
    if not base_eval.is_file():
        result = evaluate_accuracy(base_model_fn(), tokenizer, eval_problems, verifier, config.max_new_tokens)
        atomic_write_json(base_eval, result)
    records.append({"iteration": 0, **{k: v for k, v in read_json_object(base_eval).items() if k != "correct"}})
    log(f"iteration 0 (base): held-out accuracy {records[0]['accuracy']:.3f}")
    previous_model: Optional[Path] = None
    for iteration in range(1, config.num_iterations + 1):
        folder = root / f"iter_{iteration}"
        if (folder / "provenance.json").is_file():
            record = read_json_object(folder / "provenance.json")["record"]
            records.append(record)
            previous_model = folder / "model"
            log(f"iteration {iteration}: complete, held-out accuracy {record['accuracy']:.3f} (resumed)")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        # sampling uses the previous iteration's policy
        current = base_model_fn() if previous_model is None else AutoModelForCausalLM.from_pretrained(previous_model)
        kept, counts = [], {"sampled_correct": 0, "rationalised": 0, "problems": len(train_problems)}
        for chunk_index, start in enumerate(range(0, len(train_problems), config.chunk_size)):
            chunk = train_problems[start : start + config.chunk_size]
            samples_file = folder / f"samples_{chunk_index:04d}.json"
            if not samples_file.is_file():
                seed = config.seed * 1_000_003 + iteration * 10_007 + chunk_index
                samples = sample_completions(
                    current, tokenizer, chunk["prompt"], config.num_samples, config.temperature,
                    config.max_new_tokens, seed,
                )  # fmt: skip
                atomic_write_json(samples_file, {"samples": samples})
            samples = read_json_object(samples_file)["samples"]
            failed = []
            for prompt, answer, group in zip(chunk["prompt"], chunk["answer"], samples):
                verified = [s for s in group if verifier(s, answer)]
                if verified:
                    kept.append({"prompt": prompt, "completion": verified[0], "source": "sampled"})
                    counts["sampled_correct"] += 1
                else:
                    failed.append((prompt, answer))
            if config.rationalize and failed:
                hinted_file = folder / f"rationalised_{chunk_index:04d}.json"
                if not hinted_file.is_file():
                    seed = config.seed * 1_000_003 + iteration * 10_007 + chunk_index + 500_000
                    hinted = [_hint(p, a, config.hint_template) for p, a in failed]
                    rationales = sample_completions(
                        current, tokenizer, hinted, config.num_samples, config.temperature, config.max_new_tokens, seed
                    )
                    atomic_write_json(hinted_file, {"samples": rationales})
                rationales = read_json_object(hinted_file)["samples"]
                for (prompt, answer), group in zip(failed, rationales):
                    verified = [s for s in group if verifier(s, answer)]
                    if verified:
                        # trained on the prompt without the hint: the model must learn to reach the answer unaided
                        kept.append({"prompt": prompt, "completion": verified[0], "source": "rationalised"})
                        counts["rationalised"] += 1
        atomic_write_json(folder / "kept.json", {"rows": kept, "counts": counts})
        log(f"iteration {iteration}: kept {len(kept)} verified rationales ({counts})")
        if not (folder / "sft_done.json").is_file():
            if kept:
                start_from = None if config.restart_from_base else previous_model
                rows = [{k: r[k] for k in ("prompt", "completion")} for r in kept]
                sft_on_rows(base_model_fn, start_from, tokenizer, rows, folder, config)
            else:
                # nothing verified to learn from: the iteration keeps the policy it sampled with
                log(f"iteration {iteration}: no verified rationale; the policy is kept unchanged")
                current.save_pretrained(folder / "model")
                tokenizer.save_pretrained(folder / "model")
            atomic_write_json(folder / "sft_done.json", {"rows": len(kept)})
        model = AutoModelForCausalLM.from_pretrained(folder / "model")
        result = evaluate_accuracy(model, tokenizer, eval_problems, verifier, config.max_new_tokens)
        atomic_write_json(folder / "eval.json", result)
        record = {"iteration": iteration, "accuracy": result["accuracy"], "n": result["n"], **counts}
        stage_files = sorted(p for p in folder.glob("*.json") if p.name != "provenance.json")
        atomic_write_json(
            folder / "provenance.json",
            {
                "record": record,
                "config": asdict(config),
                "versions": _versions(),
                "files": {p.name: _file_hash(p) for p in stage_files},
                "previous": _file_hash(root / f"iter_{iteration - 1}" / "provenance.json") if iteration > 1 else None,
            },
        )
        records.append(record)
        previous_model = folder / "model"
        log(f"iteration {iteration}: held-out accuracy {record['accuracy']:.3f}")
    atomic_write_json(root / "star_results.json", {"iterations": records, "config": asdict(config)})
    return records


def load_kept(folder) -> list[dict]:
    """The kept rationales of an iteration folder (`kept.json`)."""
    return json.loads((Path(folder) / "kept.json").read_text())["rows"]
