"""Whole GRPO steps, generation and peak memory: ReasoningGRPOTrainer (each prompt run once per group, in
generation and in the loss forward) vs stock trl.GRPOTrainer.

Same random-init weights (timing does not depend on them), data, seed and generation settings for
both; one prompt per step (one GRPO group of G completions), 32 new tokens, a GPT-2-small-shaped model
(12 layers, 768 wide, GPT-2's 50257-row LM head; `--quick`: 2 layers, 64 wide, the tokenizer's
vocabulary, short prompts; `--family crsm`: a CRSM of 4 layers, 256 wide, whose loss forward shares
the recurrent state after each prompt and whose generation is stock's). The tokenizer is a local 1024-token BPE; the model's extra ids are never
in a prompt. Every setting (prompt length x G x gradient checkpointing x trainer) runs in its own
process: one warm-up step on a 32-token prompt (first-call costs), then `--repeats` timed steps; the
generation inside each timed step is timed on its own. Prints, per setting:

    gen@1024/G8/no_gc: ours X s, reference Y s, ratio Z (identical completions: True)
    step@1024/G8/no_gc: ours X s, reference Y s, ratio Z          (ratio = reference / ours: the speed-up)
    peak_rss@1024/G8/no_gc: ours X MiB, reference Y MiB, ratio Z (above the model: ours x, reference y)

then a full-size exactness check (one step of each trainer on the same 1024-token prompt, G = 8, with
and without checkpointing: per-token log-probabilities, entropies, the loss and every gradient
compared, relative to each tensor's largest magnitude) and the verdicts against the goals: whole step
>= 3x faster at 1024 prompt tokens and G = 8, generation >= 2x there, lower peak memory than stock in
every setting, and the check within 1e-5.

Peak memory is the process's peak resident set (`resource.getrusage(...).ru_maxrss`, Linux: KiB), one
fresh process per setting: torch's CPU allocator keeps no statistics (`torch.cuda.max_memory_allocated`
has no CPU counterpart) and tracemalloc does not see tensor storage, while the peak RSS of a process
that ran only that setting is what the machine has to provide. "Above the model" subtracts the peak
reached before training starts (interpreter, libraries, model, tokenizer, data).

What each trainer runs per step, and the measured results: docs/trainers.md.

    python bench/grpo_prefill.py            # every setting (a setting whose process is killed, e.g. for
                                            # memory, is reported and the others still run)
    python bench/grpo_prefill.py --quick    # tiny shapes, 64 tokens, G = 8: 1-2 minutes (5 processes)
    python bench/grpo_prefill.py --family crsm   # CRSM (4 layers, 256 wide): the recurrent state after the
                                                 # prompt shared; no stated goal, the same report
"""

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PrinterCallback, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from hf_reason import CRSMConfig, CRSMForCausalLM  # noqa: E402
from hf_reason.data import build_tokenizer, load_text_corpus  # noqa: E402
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer  # noqa: E402


GPT2_SMALL_VOCAB_SIZE = 50257
# CRSM: CRSMConfig's default size (4 layers, 256 wide); quick: 2 layers, 64 wide
CRSM_SHAPES = {
    "full": dict(hidden_size=256, num_hidden_layers=4, state_size=16),
    "quick": dict(hidden_size=64, num_hidden_layers=2, state_size=8),
}
GOAL_LENGTH, GOAL_GROUP = 1024, 8
GOAL_STEP_RATIO, GOAL_GEN_RATIO, GOAL_REL_ERROR = 3.0, 2.0, 1e-5
WARMUP_LENGTH = 32
TRAINERS = {"ours": (ReasoningGRPOTrainer, ReasoningGRPOConfig), "reference": (GRPOTrainer, GRPOConfig)}
RESULT_PREFIX = "GRPO_BENCH_RESULT "
# the loss is compared too, but at a first step (old-policy log-probabilities = the current ones, detached) its
# value is the advantages' alone; the per-token log-probabilities and the gradients carry the comparison
NUMERIC_CHECKS = ("logps", "entropies", "loss", "grads")


def length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


class StepTimer(TrainerCallback):
    """Times each training step and the generation inside it; keeps each step's completions."""

    def __init__(self):
        self.step_times, self.gen_times, self.completions, self._start = [], [], [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_times.append(time.perf_counter() - self._start)

    def wrap_generation(self, trainer):
        generate = trainer._generate_single_turn

        def timed(*args, **kwargs):
            start = time.perf_counter()
            completion_ids, logprobs = generate(*args, **kwargs)
            self.gen_times.append(time.perf_counter() - start)
            self.completions.append([list(c) for c in completion_ids])
            return completion_ids, logprobs

        trainer._generate_single_turn = timed  # instance attribute: TRL calls self._generate_single_turn


class StepRecorder(TrainerCallback):
    """Keeps the per-token log-probabilities and entropies of the loss forward, the loss and the gradients."""

    def __init__(self, trainer):
        self.record = {}
        logps_forward, compute_loss = trainer._get_per_token_logps_and_entropies, trainer._compute_loss

        def logps(*args, **kwargs):
            out = logps_forward(*args, **kwargs)
            if torch.is_grad_enabled():  # the policy's loss forward
                self.record["logps"], self.record["entropies"] = out[0].detach().clone(), out[1].detach().clone()
            return out

        def loss(model, inputs):
            value = compute_loss(model, inputs)
            self.record["loss"] = value.detach().clone()
            return value

        trainer._get_per_token_logps_and_entropies, trainer._compute_loss = logps, loss

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.record["grads"] = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_prompts(tokenizer, lengths: list[int]) -> list[str]:
    """One prompt of each length in `lengths`, each from a different place of the text corpus."""
    ids = tokenizer(" ".join(load_text_corpus("train")["text"]))["input_ids"]
    prompts = []
    for i, length in enumerate(lengths):
        start = (i * 997) % max(1, len(ids) - length)
        prompts.append(tokenizer.decode(ids[start : start + length]))
    return prompts


def build_model(spec: dict, tokenizer):
    torch.manual_seed(0)
    if spec["family"] == "crsm":
        return CRSMForCausalLM(
            CRSMConfig(
                vocab_size=spec["vocab_size"],
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id,
                **CRSM_SHAPES["quick" if spec["quick"] else "full"],
            )
        )
    shape = dict(n_embd=64, n_layer=2, n_head=2) if spec["quick"] else dict(n_embd=768, n_layer=12, n_head=12)
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=spec["vocab_size"],
            n_positions=spec["max_length"] + spec["completion_length"] + 8,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            **shape,
        )
    )


def build_trainer(name, spec, model, tokenizer, prompts, out_dir, gradient_checkpointing, callbacks):
    cls, config_cls = TRAINERS[name]
    args = config_cls(
        output_dir=out_dir,
        per_device_train_batch_size=spec["group_size"],
        num_generations=spec["group_size"],
        max_completion_length=spec["completion_length"],
        max_steps=len(prompts),
        learning_rate=1e-5,
        max_grad_norm=0.0,  # the check compares raw gradients; clipping would only rescale both alike
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
        gradient_checkpointing=gradient_checkpointing,
        shuffle_dataset=False,  # one prompt per step, in the order given
    )
    trainer = cls(
        model=model,
        reward_funcs=length_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def timed_setting(spec: dict) -> dict:
    """One trainer at one prompt length, G and checkpointing setting, in this process."""
    tokenizer = build_tokenizer(vocab_size=1024)
    prompts = make_prompts(tokenizer, [WARMUP_LENGTH] + [spec["length"]] * spec["repeats"])
    model = build_model(spec, tokenizer)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(spec["trainer"], spec, model, tokenizer, prompts, tmp, spec["gc"], [timer])
        timer.wrap_generation(trainer)
        start_rss = peak_rss_mib()
        torch.manual_seed(0)
        trainer.train()
    return {
        "step_times": timer.step_times[1:],
        "gen_times": timer.gen_times[1:],
        "completions": timer.completions[1:],
        "prompt_tokens": len(tokenizer(prompts[1])["input_ids"]),
        "peak_rss_mib": peak_rss_mib(),
        "start_rss_mib": start_rss,
    }


def exactness_check(spec: dict) -> dict:
    """One step of each trainer on the same prompt; the largest relative errors of ours against stock."""
    tokenizer = build_tokenizer(vocab_size=1024)
    prompts = make_prompts(tokenizer, [spec["length"]])
    base = build_model(spec, tokenizer)
    errors = {}
    for gradient_checkpointing in (False, True):
        records = {}
        for name in TRAINERS:
            with tempfile.TemporaryDirectory() as tmp:
                trainer = build_trainer(
                    name, spec, copy.deepcopy(base), tokenizer, prompts, tmp, gradient_checkpointing, []
                )
                recorder = StepRecorder(trainer)
                trainer.add_callback(recorder)
                torch.manual_seed(0)
                trainer.train()
                records[name] = recorder.record
                del trainer
        ours, stock = records["ours"], records["reference"]

        def relative(a, b):
            return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))

        errors["gc" if gradient_checkpointing else "no_gc"] = {
            "logps": relative(ours["logps"], stock["logps"]),
            "entropies": relative(ours["entropies"], stock["entropies"]),
            "loss": relative(ours["loss"], stock["loss"]),
            "grads": max(relative(g, stock["grads"][n]) for n, g in ours["grads"].items()),
            "same_params": sorted(ours["grads"]) == sorted(stock["grads"]),
            "worst_param": max(ours["grads"], key=lambda n: relative(ours["grads"][n], stock["grads"][n])),
        }
    return errors


def run_in_subprocess(spec: dict) -> dict:
    """`spec` run by a fresh interpreter (its own peak RSS); a failure comes back as `{"error": ...}`."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    result = subprocess.run(command, capture_output=True, text=True)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    reason = "killed (out of memory?)" if result.returncode in (-9, 137) else f"exit {result.returncode}"
    return {"error": f"{reason}: {result.stderr.strip()[-400:]}"}


def setting_name(length, group_size, gc) -> str:
    return f"{length}/G{group_size}/{'gc' if gc else 'no_gc'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and prompts: checks the script runs")
    parser.add_argument(
        "--family",
        choices=["gpt2", "crsm"],
        default="gpt2",
        help="gpt2 (the goals' model) or crsm (recurrent state shared; 4 layers, 256 wide, the tokenizer's vocabulary)",
    )
    parser.add_argument("--prompt_lengths", type=int, nargs="+", default=None, help="default 256 1024 (quick: 64)")
    parser.add_argument("--group_sizes", type=int, nargs="+", default=None, help="G values (default 8 16; quick 8)")
    parser.add_argument(
        "--gradient_checkpointing", choices=["both", "on", "off"], default="both", help="settings to run"
    )
    parser.add_argument("--completion_length", type=int, default=None, help="new tokens (default 32; quick 8)")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per setting (median; >= 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--vocab_size",
        type=int,
        default=None,
        help="rows of the model's LM head (default: GPT-2 small's 50257; quick: the tokenizer's)",
    )
    parser.add_argument("--skip_check", action="store_true", help="no full-size exactness check")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker is not None:
        spec = json.loads(a.worker)
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        result = exactness_check(spec) if spec["kind"] == "check" else timed_setting(spec)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return
    if a.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {a.repeats}")
    lengths = a.prompt_lengths or ([64] if a.quick else [256, 1024])
    group_sizes = a.group_sizes or ([8] if a.quick else [8, 16])
    checkpointing = {"both": [False, True], "on": [True], "off": [False]}[a.gradient_checkpointing]
    completion_length = a.completion_length or (8 if a.quick else 32)
    tokenizer_size = len(build_tokenizer(vocab_size=1024))
    vocab_size = a.vocab_size or (tokenizer_size if a.quick or a.family == "crsm" else GPT2_SMALL_VOCAB_SIZE)
    if vocab_size < tokenizer_size:
        parser.error(f"--vocab_size must be >= the tokenizer's {tokenizer_size} tokens, got {vocab_size}")
    common = dict(
        quick=a.quick,
        family=a.family,
        vocab_size=vocab_size,
        completion_length=completion_length,
        max_length=max(lengths),
        repeats=a.repeats,
        threads=a.threads,
    )
    if a.family == "crsm":
        crsm = CRSM_SHAPES["quick" if a.quick else "full"]
        model_name = f"CRSM ({crsm['num_hidden_layers']} layers, {crsm['hidden_size']} wide)"
    else:
        model_name = f"GPT-2 {'quick (2 layers, 64 wide)' if a.quick else 'small (12 layers, 768 wide)'}"
    print(
        f"model: {model_name}, vocab "
        f"{vocab_size}, {completion_length} new tokens, {a.repeats} timed step(s) per setting after a "
        f"{WARMUP_LENGTH}-token warm-up step, threads={a.threads or torch.get_num_threads()}",
        flush=True,
    )
    step_ratio, gen_ratio, memory_lower = {}, {}, {}
    for length in lengths:
        for group_size in group_sizes:
            for gc in checkpointing:
                name = setting_name(length, group_size, gc)
                results = {
                    trainer: run_in_subprocess(
                        dict(common, kind="timed", trainer=trainer, length=length, group_size=group_size, gc=gc)
                    )
                    for trainer in TRAINERS
                }
                failed = {t: r["error"] for t, r in results.items() if "error" in r}
                if failed:
                    print(f"step@{name}: not measured ({failed})", flush=True)
                    continue
                ours, ref = results["ours"], results["reference"]
                gen = {t: statistics.median(r["gen_times"]) for t, r in results.items()}
                step = {t: statistics.median(r["step_times"]) for t, r in results.items()}
                same = ours["completions"] == ref["completions"]
                gen_ratio[name], step_ratio[name] = gen["reference"] / gen["ours"], step["reference"] / step["ours"]
                print(
                    f"gen@{name}: ours {gen['ours']:.3f} s, reference {gen['reference']:.3f} s, ratio "
                    f"{gen_ratio[name]:.2f} (prompt {ours['prompt_tokens']} tokens, identical completions: {same})",
                    flush=True,
                )
                print(
                    f"step@{name}: ours {step['ours']:.3f} s, reference {step['reference']:.3f} s, ratio "
                    f"{step_ratio[name]:.2f}",
                    flush=True,
                )
                above = {t: r["peak_rss_mib"] - r["start_rss_mib"] for t, r in results.items()}
                memory_lower[name] = ours["peak_rss_mib"] < ref["peak_rss_mib"]
                print(
                    f"peak_rss@{name}: ours {ours['peak_rss_mib']:.0f} MiB, reference {ref['peak_rss_mib']:.0f} MiB, "
                    f"ratio {ref['peak_rss_mib'] / ours['peak_rss_mib']:.2f} (above the model: ours "
                    f"{above['ours']:.0f}, reference {above['reference']:.0f})",
                    flush=True,
                )

    check_length = GOAL_LENGTH if not a.quick else max(lengths)
    check_group = GOAL_GROUP if not a.quick else max(group_sizes)
    check = None
    if not a.skip_check:
        check = run_in_subprocess(dict(common, kind="check", length=check_length, group_size=check_group))
        if "error" in check:
            print(f"check@{check_length}/G{check_group}: failed to run ({check['error']})", flush=True)
            check = None
        else:
            for gc_name, errors in check.items():
                parts = ", ".join(f"{k} {errors[k]:.2g}" for k in NUMERIC_CHECKS)
                print(
                    f"check@{check_length}/G{check_group}/{gc_name}: max relative error ours vs reference: {parts} "
                    f"(worst gradient: {errors['worst_param']}; same parameters: {errors['same_params']})",
                    flush=True,
                )

    full_size = a.family == "gpt2" and not a.quick and vocab_size == GPT2_SMALL_VOCAB_SIZE and completion_length == 32
    where = f"{GOAL_LENGTH} prompt tokens, G = {GOAL_GROUP}, GPT-2-small shape"
    for gc in checkpointing:
        name = setting_name(GOAL_LENGTH, GOAL_GROUP, gc)
        for label, ratios, goal in [
            ("whole step", step_ratio, GOAL_STEP_RATIO),
            ("generation", gen_ratio, GOAL_GEN_RATIO),
        ]:
            text = f"goal: >= {goal:g}x faster {label} at {where}, {'with' if gc else 'without'} checkpointing"
            if name not in ratios:
                print(f"{text}: not measured")
            elif not full_size:
                print(f"{text}: not judged (not the goal's setting; ratio {ratios[name]:.2f})")
            else:
                print(f"{text}: {'MET' if ratios[name] >= goal else 'NOT MET'} (ratio {ratios[name]:.2f})")
    text = "goal: lower peak memory than stock in every setting"
    if memory_lower:
        lower = [n for n, ok in memory_lower.items() if ok]
        verdict = "MET" if len(lower) == len(memory_lower) else "NOT MET"
        print(
            f"{text}: {verdict if full_size else 'not judged (not the goal setting)'} (lower in {len(lower)} of {len(memory_lower)})"
        )
    text = f"goal: per-token log-probabilities, loss and gradients within {GOAL_REL_ERROR:g} relative of stock"
    if check is None:
        print(f"{text}: not checked")
    else:
        worst = max(errors[k] for errors in check.values() for k in NUMERIC_CHECKS)
        ok = worst <= GOAL_REL_ERROR and all(errors["same_params"] for errors in check.values())
        scope = "" if full_size else " (not at the goal's shape)"
        print(f"{text}: {'MET' if ok else 'NOT MET'}{scope} (worst {worst:.2g})")


if __name__ == "__main__":
    main()
