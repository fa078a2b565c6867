"""SFT -> best-of-N preference pairs -> DPO on LoRA adapters -> paired evaluation, for a base model.

Five stages, each in its own folder under --output_dir, each resumable: a stage whose folder holds
its `provenance.json` is complete and is skipped (a stage writes into `<stage>.tmp` and renames it
when done, so a killed run never leaves a half-written stage that looks complete). Every artifact
folder carries `provenance.json`: git commit (and whether the tree was dirty), the full config,
the seed, the model, the library versions and the provenance hashes of the stage's inputs.

A complete stage is reused only when it is still what this run would build: the options it
depends on (`STAGE_OPTIONS`) are the recorded ones and its input stages are the very ones it was
built from (their provenance hashes). Otherwise the run stops and names what changed; delete the
stage folder, or pass --redo_stale to rebuild every stale stage (the stages after a rebuilt one
then become stale in turn, since their recorded input hash no longer matches). Same options and
seed give the same artifacts (`eval.json` included) on the same machine and library versions.

With --model_name_or_path, stage 1 saves that model's own tokenizer (with `<think>` / `</think>`
and a pad token added when it lacks them) and stage 2 resizes the model's embeddings to it; a
new model gets a tokenizer trained locally on the SFT texts instead.

  1_data   completion-style few-shot prompts (no chat template: this is a base model), checked for
           chat-template tokens; train / pair-pool / held-out splits that share no problem
  2_sft    trl.SFTTrainer with the loss on the completion only (`completion_only_loss=True`)
  3_pairs  best-of-N sampling from the SFT model; pairs with confidence filtering (the chosen
           sample must be correct, and enough samples must agree with its answer) and hard
           negatives (the wrong sample closest to the chosen one); generated text with
           chat-template tokens is flagged and dropped
  4_dpo    DPO on LoRA adapters (peft): `LengthBalancedDPOTrainer` (default) or stock `DPOTrainer`;
           `--load_in_4bit` trains QLoRA-style on a freshly loaded 4-bit model (bitsandbytes)
  5_eval   held-out problems, greedy: SFT vs SFT+DPO with exact McNemar tests (overall and per
           difficulty, Benjamini-Hochberg corrected), Wilson intervals and Cohen's h

    python examples/sft_dpo_pipeline.py --output_dir runs/pipeline                  # smoke: a few minutes
    python examples/sft_dpo_pipeline.py --output_dir runs/pipeline --sft_steps 2000 --num_sft 20000 \\
        --num_pool 2000 --dpo_steps 500 --num_eval 1000 --hidden_size 256 --num_layers 4   # a real run
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from datasets import Dataset, load_from_disk  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed  # noqa: E402

from hf_reason.data import (  # noqa: E402
    build_preference_pairs,
    build_tokenizer,
    extract_answer,
    find_chat_template_tokens,
    generate_arithmetic,
    is_correct,
)
from hf_reason.distributed import end_distributed  # noqa: E402
from hf_reason.evaluation.statistics import (  # noqa: E402
    benjamini_hochberg,
    cohens_h,
    format_proportion,
    mcnemar_from_outcomes,
    wilson_interval,
)
from hf_reason.file_io import atomic_write_json
from hf_reason.trainers.dpo import check_4bit_weights_trainable  # noqa: E402
from hf_reason.trainers.rewards import ArithmeticAnswerReward, FormatReward  # noqa: E402


REPO_ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Solve each problem. Think inside <think></think>, then give the answer after ####.\n\n"


# ----------------------------------------------------------------------------- provenance, stages
def git_state() -> dict:
    def run(*cmd):
        try:
            return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = run("git", "rev-parse", "HEAD") or "unknown"
    return {"commit": commit, "dirty": bool(run("git", "status", "--porcelain", "--untracked-files=no"))}


# The options each stage's artifacts depend on: a complete stage recorded with other values is stale.
# Every option appears here or in OPTIONS_WITHOUT_EFFECT (parse_args checks it, so a new option
# cannot be forgotten and silently reuse stages built without it).
STAGE_OPTIONS = {
    "1_data": (
        "seed",
        "model_name_or_path",
        "vocab_size",
        "max_ops",
        "max_value",
        "num_shots",
        "num_sft",
        "num_pool",
        "num_eval",
    ),
    "2_sft": (
        "seed",
        "model_name_or_path",
        "family",
        "hidden_size",
        "num_layers",
        "max_length",
        "max_new_tokens",
        "batch_size",
        "sft_steps",
        "sft_lr",
    ),
    "3_pairs": (
        "seed",
        "gen_batch_size",
        "num_samples",
        "temperature",
        "max_new_tokens",
        "format_weight",
        "min_confidence",
    ),
    "4_dpo": (
        "seed",
        "dpo_method",
        "dpo_steps",
        "dpo_lr",
        "beta",
        "think_alpha",
        "lora_r",
        "load_in_4bit",
        "batch_size",
        "max_length",
    ),
    "5_eval": ("seed", "gen_batch_size", "max_new_tokens"),
}
OPTIONS_WITHOUT_EFFECT = ("output_dir", "redo_stale")


class StaleStageError(RuntimeError):
    """A complete stage no longer matches this run's options or inputs."""


def provenance_hash(stage_dir: Path) -> str:
    return hashlib.sha256((stage_dir / "provenance.json").read_bytes()).hexdigest()


def provenance(stage: str, args, model: str, inputs: list[Path], **extra) -> dict:
    import peft
    import transformers
    import trl

    return {
        "stage": stage,
        # also makes every rebuild's hash new, so the stages built on the old one are seen to be stale
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "git": git_state(),
        "config": vars(args),
        "seed": args.seed,
        "model": model,
        # keyed by stage name, not path: a moved --output_dir still resumes
        "inputs": {p.name: provenance_hash(p) for p in inputs},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
            "peft": peft.__version__,
            "python": sys.version.split()[0],
        },
        **extra,
    }


class Stage:
    """A stage folder: complete iff it holds provenance.json; built in `<name>.tmp`, then renamed."""

    def __init__(self, root: Path, name: str):
        self.final, self.tmp, self.name = root / name, root / f"{name}.tmp", name
        self.stale = root / f"{name}.stale"  # a replaced build, between the two renames of `finish`

    @property
    def done(self) -> bool:
        return (self.final / "provenance.json").is_file()

    def changes(self, args, inputs: list[Path]) -> list[str]:
        """What differs between the recorded build of this stage and what this run would build."""
        record = json.loads((self.final / "provenance.json").read_text())
        changed = [
            f"--{key} {record['config'].get(key)!r} -> {getattr(args, key)!r}"
            for key in STAGE_OPTIONS[self.name]
            if record["config"].get(key) != getattr(args, key)
        ]
        recorded_inputs = record.get("inputs", {})
        changed += [
            f"{p.name} was rebuilt after it" for p in inputs if recorded_inputs.get(p.name) != provenance_hash(p)
        ]
        return changed

    def skip(self, args, inputs: list[Path] = ()) -> bool:
        """True when the stage is complete and current; False when it must be built.

        A complete but stale stage (see `changes`) raises `StaleStageError`, or is rebuilt with --redo_stale.
        """
        if not self.done:
            return False
        changed = self.changes(args, list(inputs))
        if not changed:
            print(f"[{self.name}] complete, skipped")
            return True
        if args.redo_stale:
            print(f"[{self.name}] stale ({'; '.join(changed)}): rebuilding it")
            return False
        raise StaleStageError(
            f"{self.final} was built from other inputs than this run's: {'; '.join(changed)}. Reusing it would mix "
            f"runs. Rerun with the recorded options, delete {self.final} (and the stages after it), or pass "
            "--redo_stale to rebuild every stale stage."
        )

    def begin(self) -> Path:
        if self.final.exists() and not self.done:
            raise RuntimeError(
                f"{self.final} exists without provenance.json: not written by this pipeline; move it away"
            )
        for leftover in (self.tmp, self.stale):  # left by a killed run
            shutil.rmtree(leftover, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        return self.tmp

    def finish(self, record: dict) -> None:
        atomic_write_json(self.tmp / "provenance.json", record, indent=2, sort_keys=True, default=str)
        if self.final.exists():  # a rebuild: the old stage stays complete until the new one takes its place
            os.replace(self.final, self.stale)
        os.replace(self.tmp, self.final)
        shutil.rmtree(self.stale, ignore_errors=True)


# ----------------------------------------------------------------------------- model helpers
def think_format(completion: str) -> str:
    work, answer = completion.rsplit("####", 1)
    return f" <think>{work.rstrip()}</think> ####{answer}"


def new_model(args, tokenizer):
    ids = dict(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id
    )
    if args.family == "llama":  # nn.Linear layers: what bitsandbytes quantizes (GPT-2's Conv1D is not)
        from transformers import LlamaConfig, LlamaForCausalLM

        return LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=args.hidden_size,
                intermediate_size=2 * args.hidden_size,
                num_hidden_layers=args.num_layers,
                num_attention_heads=max(1, args.hidden_size // 32),
                max_position_embeddings=args.max_length + args.max_new_tokens,
                **ids,
            )
        )
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=args.max_length + args.max_new_tokens,
            n_embd=args.hidden_size,
            n_layer=args.num_layers,
            n_head=max(1, args.hidden_size // 32),
            **ids,
        )
    )


THINK_TAGS = ("<think>", "</think>")


def base_model_tokenizer(model_name_or_path: str):
    """The base model's own tokenizer, with what the pipeline needs added: the think tags as single
    tokens (the length-balanced DPO segments on them) and a pad token. New tokens get new ids after
    the base vocabulary, so every id the base model was trained on keeps its meaning."""
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    if tokenizer.eos_token is None:
        raise ValueError(
            f"--model_name_or_path {model_name_or_path!r}: its tokenizer has no eos_token, which "
            "ends every completion (SFT targets, sampling, DPO pairs); use a causal LM with one"
        )
    missing = [t for t in THINK_TAGS if len(tokenizer(t, add_special_tokens=False)["input_ids"]) != 1]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_additional_special_tokens=False)
    if tokenizer.pad_token is None:  # GPT-2 style base models have none; eos as pad would hide real EOS tokens
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def load_base_model(model_name_or_path: str, tokenizer):
    """The base model with its embeddings grown to the tokens stage 1 added (never shrunk)."""
    model = AutoModelForCausalLM.from_pretrained(model_name_or_path)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def load_for_training(path: Path, load_in_4bit: bool):
    if not load_in_4bit:
        return AutoModelForCausalLM.from_pretrained(path)
    from transformers import BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(
        path, quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32)
    )
    # freshly loaded and never run: the 4-bit weights are still in their trainable layout
    check_4bit_weights_trainable(model)
    return model


@torch.no_grad()
def generate(model, tokenizer, prompts, args, num_samples=1, do_sample=False, desc="generating"):
    model.eval()
    outputs = []
    for s in tqdm(range(0, len(prompts), args.gen_batch_size), desc=desc):
        batch = tokenizer(prompts[s : s + args.gen_batch_size], return_tensors="pt", padding=True, padding_side="left")
        out = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=args.max_new_tokens,
            do_sample=do_sample,
            num_return_sequences=num_samples,
            temperature=args.temperature if do_sample else None,
            top_k=0 if do_sample else None,
            top_p=1.0 if do_sample else None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts = tokenizer.batch_decode(out[:, batch["input_ids"].size(1) :], skip_special_tokens=False)
        texts = [t.split(tokenizer.eos_token)[0].replace(tokenizer.pad_token, "") for t in texts]
        outputs.extend(texts[i : i + num_samples] for i in range(0, len(texts), num_samples))
    return outputs


# ----------------------------------------------------------------------------- stages
def stage_data(args, root: Path) -> None:
    stage = Stage(root, "1_data")
    if stage.skip(args, inputs=[]):
        return
    out = stage.begin()
    heldout = generate_arithmetic(args.num_eval, max_ops=args.max_ops, max_value=args.max_value, seed=args.seed + 3)
    held_prompts = set(heldout["prompt"])

    def disjoint(n, seed):
        # drawn with more rows than needed so that dropping held-out duplicates still leaves n
        data = generate_arithmetic(2 * n + 50, max_ops=args.max_ops, max_value=args.max_value, seed=seed)
        data = data.filter(lambda row: row["prompt"] not in held_prompts)
        return data.select(range(min(n, len(data))))

    shots = (
        generate_arithmetic(args.num_shots, max_ops=args.max_ops, max_value=args.max_value, seed=args.seed + 4)
        if args.num_shots
        else None
    )
    prefix = (
        INSTRUCTION + "".join(f"{p}{think_format(c)}\n\n" for p, c in zip(shots["prompt"], shots["completion"]))
        if shots
        else INSTRUCTION
    )

    splits = {
        "sft": disjoint(args.num_sft, args.seed + 1),
        "pool": disjoint(args.num_pool, args.seed + 2),
        "eval": heldout,
    }
    for name, data in splits.items():
        data = data.map(lambda row: {"prompt": prefix + row["prompt"], "completion": think_format(row["completion"])})
        flagged = [t for t in list(data["prompt"]) + list(data["completion"]) if find_chat_template_tokens(t)]
        if flagged:
            raise ValueError(f"chat-template tokens in the {name} split of a base model's data, e.g. {flagged[0]!r}")
        data.save_to_disk(out / name)
    if args.model_name_or_path:
        # the base model's ids only mean something through its own tokenizer
        tokenizer = base_model_tokenizer(args.model_name_or_path)
    else:
        texts = [p + c for p, c in zip(splits["sft"]["prompt"], splits["sft"]["completion"])] + [prefix]
        tokenizer = build_tokenizer(vocab_size=args.vocab_size, texts=texts, extra_special_tokens=THINK_TAGS)
    tokenizer.save_pretrained(out / "tokenizer")
    stage.finish(
        provenance(
            "data",
            args,
            model=args.model_name_or_path or "(none)",
            inputs=[],
            tokenizer=args.model_name_or_path or f"trained locally ({len(tokenizer)} tokens)",
        )
    )


def stage_sft(args, root: Path) -> None:
    from trl import SFTConfig, SFTTrainer

    stage, data_dir = Stage(root, "2_sft"), root / "1_data"
    if stage.skip(args, inputs=[data_dir]):
        return
    out = stage.begin()
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(data_dir / "tokenizer")
    model = (
        load_base_model(args.model_name_or_path, tokenizer) if args.model_name_or_path else new_model(args, tokenizer)
    )
    sft = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=load_from_disk(data_dir / "sft"),
        args=SFTConfig(
            output_dir=str(out / "trainer"),
            max_steps=args.sft_steps,
            learning_rate=args.sft_lr,
            per_device_train_batch_size=args.batch_size,
            completion_only_loss=True,
            max_length=args.max_length,
            use_cpu=not torch.cuda.is_available(),
            bf16=False,
            report_to="none",
            save_strategy="no",
            seed=args.seed,
            logging_steps=max(1, args.sft_steps // 10),
        ),
    )
    sft.train()
    sft.save_model(str(out))
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / "trainer", ignore_errors=True)
    model_desc = args.model_name_or_path or f"new {args.family} ({args.num_layers} layers, {args.hidden_size} wide)"
    # the Hub commit the base model resolved to, when it came from the Hub
    revision = getattr(model.config, "_commit_hash", None) if args.model_name_or_path else None
    stage.finish(provenance("sft", args, model=model_desc, inputs=[data_dir], model_revision=revision))


def stage_pairs(args, root: Path) -> None:
    stage, sft_dir, data_dir = Stage(root, "3_pairs"), root / "2_sft", root / "1_data"
    if stage.skip(args, inputs=[sft_dir, data_dir]):
        return
    out = stage.begin()
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(sft_dir)
    model = AutoModelForCausalLM.from_pretrained(sft_dir)
    pool = load_from_disk(data_dir / "pool")
    samples = generate(
        model, tokenizer, pool["prompt"], args, num_samples=args.num_samples, do_sample=True, desc="best-of-N sampling"
    )
    correctness, fmt = ArithmeticAnswerReward(), FormatReward()
    pairs, stats = [], {"prompts": len(pool), "samples": 0, "flagged_template_tokens": 0, "no_confident_pair": 0}
    for prompt, answer, group in zip(pool["prompt"], pool["answer"], samples):
        clean = [s for s in group if not find_chat_template_tokens(s)]
        stats["samples"] += len(group)
        stats["flagged_template_tokens"] += len(group) - len(clean)
        if len(clean) < 2:
            stats["no_confident_pair"] += 1
            continue
        kwargs = dict(prompts=[prompt] * len(clean), completions=clean, answer=[answer] * len(clean))
        rewards = [c + args.format_weight * f for c, f in zip(correctness(**kwargs), fmt(**kwargs))]
        pair = build_preference_pairs(
            prompt,
            clean,
            rewards,
            min_margin=0.5,
            min_chosen_reward=1.0,
            min_confidence=args.min_confidence,
            answers=[extract_answer(s) for s in clean],
        )
        if pair is None:
            stats["no_confident_pair"] += 1
        else:
            pairs.append(pair)
    stats["pairs"] = len(pairs)
    Dataset.from_list(pairs).save_to_disk(out / "pairs") if pairs else None
    atomic_write_json(out / "stats.json", stats, indent=2, sort_keys=True, default=str)
    print(f"[3_pairs] {stats}")
    stage.finish(provenance("pairs", args, model=str(sft_dir), inputs=[sft_dir, data_dir]))


def stage_dpo(args, root: Path) -> None:
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from hf_reason.trainers import LengthBalancedDPOConfig, LengthBalancedDPOTrainer

    stage, pairs_dir, sft_dir = Stage(root, "4_dpo"), root / "3_pairs", root / "2_sft"
    if stage.skip(args, inputs=[pairs_dir, sft_dir]):
        return
    if not (pairs_dir / "pairs").exists():
        raise RuntimeError(
            f"stage 3_pairs found no confident pair ({pairs_dir / 'stats.json'}): train the SFT model longer "
            "(--sft_steps), sample more (--num_samples / --num_pool) or lower --min_confidence"
        )
    out = stage.begin()
    set_seed(args.seed)
    pairs = load_from_disk(pairs_dir / "pairs").select_columns(["prompt", "chosen", "rejected"])
    tokenizer = AutoTokenizer.from_pretrained(sft_dir)
    # loaded right here and trained before anything else runs through it (see check_4bit_weights_trainable)
    model = load_for_training(sft_dir, args.load_in_4bit)
    # GPT-2 stores its projections transposed (Conv1D), which LoRA must be told
    lora = LoraConfig(
        r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
        fan_in_fan_out=model.config.model_type == "gpt2",
    )
    common = dict(
        output_dir=str(out / "trainer"),
        max_steps=args.dpo_steps,
        learning_rate=args.dpo_lr,
        beta=args.beta,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        report_to="none",
        save_strategy="no",
        seed=args.seed,
        logging_steps=max(1, args.dpo_steps // 10),
        gradient_checkpointing=False,
    )
    if args.dpo_method == "ours":
        trainer = LengthBalancedDPOTrainer(
            model=model,
            args=LengthBalancedDPOConfig(think_alpha=args.think_alpha, **common),
            train_dataset=pairs,
            processing_class=tokenizer,
            peft_config=lora,
        )
        # the sampler needs pairs in both length directions (in tokens, as the trainer counts them)
        diffs = [
            len(c) - len(r) for c, r in zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"])
        ]
        if any(d > 0 for d in diffs) != any(d < 0 for d in diffs):
            print(f"[4_dpo] all {len(diffs)} pairs differ in length in one direction: length-balanced batches off")
            trainer.args.length_balanced_batches = False
    else:
        trainer = DPOTrainer(
            model=model, args=DPOConfig(**common), train_dataset=pairs, processing_class=tokenizer, peft_config=lora
        )
    trainer.train()
    trainer.save_model(str(out))
    shutil.rmtree(out / "trainer", ignore_errors=True)
    stage.finish(provenance("dpo", args, model=str(sft_dir), inputs=[pairs_dir, sft_dir]))


def stage_eval(args, root: Path) -> dict:
    from peft import PeftModel

    stage = Stage(root, "5_eval")
    sft_dir, dpo_dir, data_dir = root / "2_sft", root / "4_dpo", root / "1_data"
    if stage.skip(args, inputs=[sft_dir, dpo_dir, data_dir]):
        return json.loads((stage.final / "eval.json").read_text())
    out = stage.begin()
    set_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(sft_dir)
    heldout = load_from_disk(data_dir / "eval")
    # evaluation always reloads (never reuses a trained 4-bit object: see check_4bit_weights_trainable)
    sft_model = AutoModelForCausalLM.from_pretrained(sft_dir)
    dpo_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sft_dir), dpo_dir)
    results = {}
    for name, model in (("sft", sft_model), ("dpo", dpo_model)):
        texts = [g[0] for g in generate(model, tokenizer, heldout["prompt"], args, desc=f"eval {name}")]
        results[name] = [is_correct(t, a) for t, a in zip(texts, heldout["answer"])]
    n = len(heldout)
    k_sft, k_dpo = sum(results["sft"]), sum(results["dpo"])
    b, c, p = mcnemar_from_outcomes(results["dpo"], results["sft"])
    tests = {"overall": p}
    for ops in sorted(set(heldout["num_ops"])):
        idx = [i for i, o in enumerate(heldout["num_ops"]) if o == ops]
        tests[f"num_ops={ops}"] = mcnemar_from_outcomes(
            [results["dpo"][i] for i in idx], [results["sft"][i] for i in idx]
        )[2]
    adjusted, rejected = benjamini_hochberg(list(tests.values()), alpha=0.05)
    report = {
        "n": n,
        "sft": {"correct": k_sft, "accuracy": k_sft / n, "wilson95": list(wilson_interval(k_sft, n))},
        "dpo": {"correct": k_dpo, "accuracy": k_dpo / n, "wilson95": list(wilson_interval(k_dpo, n))},
        "mcnemar_exact": {"dpo_only_correct": b, "sft_only_correct": c, "p": p},
        "cohens_h": cohens_h(k_dpo / n, k_sft / n),
        "tests_bh": {
            name: {"p": tests[name], "p_bh": a, "significant": r} for name, a, r in zip(tests, adjusted, rejected)
        },
    }
    atomic_write_json(out / "eval.json", report, indent=2, sort_keys=True, default=str)
    stage.finish(provenance("eval", args, model=f"{sft_dir} (+ LoRA {dpo_dir})", inputs=[sft_dir, dpo_dir, data_dir]))
    return report


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--model_name_or_path", default=None, help="a base causal LM to start from (default: a new tiny one)"
    )
    p.add_argument("--family", choices=("gpt2", "llama"), default="gpt2", help="family of a new model")
    p.add_argument("--hidden_size", type=int, default=64)
    p.add_argument("--num_layers", type=int, default=2)
    p.add_argument("--vocab_size", type=int, default=512)
    p.add_argument(
        "--max_length",
        type=int,
        default=256,
        help="tokens per training sequence (a new model gets max_length + max_new_tokens positions)",
    )
    p.add_argument("--max_ops", type=int, default=1, help="operators per arithmetic problem (difficulty)")
    p.add_argument("--max_value", type=int, default=9, help="largest operand")
    p.add_argument("--num_shots", type=int, default=1, help="worked examples in each completion-style prompt")
    p.add_argument("--num_sft", type=int, default=800)
    p.add_argument("--num_pool", type=int, default=48, help="prompts sampled best-of-N for pairs")
    p.add_argument("--num_eval", type=int, default=60)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--gen_batch_size", type=int, default=16)
    p.add_argument("--sft_steps", type=int, default=150)
    p.add_argument("--sft_lr", type=float, default=3e-3)
    p.add_argument("--num_samples", type=int, default=8, help="N of best-of-N")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max_new_tokens", type=int, default=40)
    p.add_argument("--format_weight", type=float, default=0.2)
    p.add_argument(
        "--min_confidence",
        type=float,
        default=0.25,
        help="share of the N samples that must agree with the chosen sample's answer",
    )
    p.add_argument("--dpo_method", choices=("ours", "stock"), default="ours")
    p.add_argument("--dpo_steps", type=int, default=30)
    p.add_argument("--dpo_lr", type=float, default=5e-4)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--think_alpha", type=float, default=0.3)
    p.add_argument("--lora_r", type=int, default=8)
    p.add_argument("--load_in_4bit", action="store_true", help="QLoRA: DPO on a 4-bit model (needs bitsandbytes)")
    p.add_argument(
        "--redo_stale",
        action="store_true",
        help="rebuild complete stages whose options or inputs differ from this run (default: stop and say what differs)",
    )
    args = p.parse_args(argv)
    unassigned = set(vars(args)) - set(OPTIONS_WITHOUT_EFFECT) - {k for keys in STAGE_OPTIONS.values() for k in keys}
    if unassigned:  # a developer's error: the option would never make a stage stale
        raise AssertionError(f"options {sorted(unassigned)} are in no STAGE_OPTIONS entry nor OPTIONS_WITHOUT_EFFECT")
    if args.load_in_4bit and args.family == "gpt2" and not args.model_name_or_path:
        p.error("--load_in_4bit needs nn.Linear layers: use --family llama (GPT-2's Conv1D layers are not quantized)")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    root = Path(args.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    for stage in (stage_data, stage_sft, stage_pairs, stage_dpo):
        stage(args, root)
    report = stage_eval(args, root)
    n = report["n"]
    print(f"SFT      {format_proportion(report['sft']['correct'], n)}")
    print(f"SFT+DPO  {format_proportion(report['dpo']['correct'], n)}")
    m = report["mcnemar_exact"]
    print(
        f"exact McNemar: DPO-only correct {m['dpo_only_correct']}, SFT-only correct {m['sft_only_correct']}, "
        f"p = {m['p']:.4g}; Cohen's h = {report['cohens_h']:+.3f}"
    )
    for name, t in report["tests_bh"].items():
        print(
            f"  {name:<10} p = {t['p']:.4g}  BH-adjusted {t['p_bh']:.4g}  {'significant' if t['significant'] else ''}"
        )
    return report


if __name__ == "__main__":
    main()
    end_distributed()
