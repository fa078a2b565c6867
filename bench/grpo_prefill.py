"""Generation time and step time: ReasoningGRPOTrainer (one prefill per group) vs stock trl.GRPOTrainer.

Same random-init weights (timing does not depend on them), data, seed and generation settings for
both; G = 8 completions of one prompt per step (one GRPO group), 32 new tokens, prompts of 256 and
1024 tokens, a GPT-2-small-shaped model (12 layers, 768 wide, GPT-2's 50257-row LM head; `--quick`:
2 layers, 64 wide, the tokenizer's vocabulary, short prompts). The tokenizer is a local 1024-token
BPE; the model's vocabulary is larger (as GPT-2 small's is), its extra ids are simply never in a
prompt. Each trainer runs one warm-up step, then `--repeats` (default 1) timed steps per prompt
length; the generation inside each timed step is timed on its own. Prints, per prompt length, one
line for generation and one for the whole training step:

    gen@1024: ours X s, reference Y s, ratio Z        (ratio = reference / ours: the speed-up)

plus whether both produced identical completions in every step under the same seed, and the
verdict against the goal: at least 2x faster generation at 1024 prompt tokens.

Cost (full size): a step's training forward + backward over 8 x ~1056 tokens is ~5 TFLOP for both
trainers, stock generation prefills 8 x 1024 tokens (~1.7 TFLOP), ours 1 x 1024 (~0.2 TFLOP); both
decode 8 x 32 tokens, each through the 768 x 50257 LM head (~20 GFLOP in all), which prefill
sharing does not change: the full-width head is what keeps the decode share honest.

    python bench/grpo_prefill.py            # full: ~4-6 min on 2 quiet CPU cores (14 min on 1 busy one)
    python bench/grpo_prefill.py --quick    # tiny shapes: well under a minute
"""

import argparse
import copy
import os
import statistics
import tempfile
import time


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PrinterCallback, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from hf_reason.data import build_tokenizer, load_text_corpus  # noqa: E402
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer  # noqa: E402


GPT2_SMALL_VOCAB_SIZE = 50257
GOAL_LENGTH, GOAL_RATIO = 1024, 2.0


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


def make_prompts(tokenizer, lengths: list[int]) -> list[str]:
    """One prompt of each length in `lengths`, each from a different place of the text corpus."""
    ids = tokenizer(" ".join(load_text_corpus("train")["text"]))["input_ids"]
    prompts = []
    for i, length in enumerate(lengths):
        start = (i * 997) % max(1, len(ids) - length)
        prompts.append(tokenizer.decode(ids[start : start + length]))
    return prompts


def build(cls, config_cls, model, tokenizer, prompts, args_ns, out_dir, timer):
    args = config_cls(
        output_dir=out_dir,
        per_device_train_batch_size=args_ns.group_size,
        num_generations=args_ns.group_size,
        max_completion_length=args_ns.completion_length,
        max_steps=len(prompts),
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=False,
        gradient_checkpointing=False,
        shuffle_dataset=False,  # one prompt per step, in the order given
    )
    trainer = cls(
        model=model,
        reward_funcs=length_reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # one comparison line per setting, not the per-step logs
    timer.wrap_generation(trainer)
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and prompts: checks the script runs")
    parser.add_argument("--prompt_lengths", type=int, nargs="+", default=None, help="default 256 1024 (quick: 32 64)")
    parser.add_argument("--group_size", type=int, default=8, help="G, completions per prompt (one prompt per step)")
    parser.add_argument("--completion_length", type=int, default=None, help="new tokens (default 32; quick 8)")
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per prompt length (median; >= 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--vocab_size",
        type=int,
        default=None,
        help="rows of the model's LM head (default: GPT-2 small's 50257; quick: the tokenizer's)",
    )
    a = parser.parse_args()
    if a.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {a.repeats}")
    if a.threads:
        torch.set_num_threads(a.threads)
    a.prompt_lengths = a.prompt_lengths or ([32, 64] if a.quick else [256, 1024])
    a.completion_length = a.completion_length or (8 if a.quick else 32)

    tokenizer = build_tokenizer(vocab_size=1024)
    vocab_size = a.vocab_size or (len(tokenizer) if a.quick else GPT2_SMALL_VOCAB_SIZE)
    if vocab_size < len(tokenizer):
        parser.error(f"--vocab_size must be >= the tokenizer's {len(tokenizer)} tokens, got {vocab_size}")
    shape = dict(n_embd=64, n_layer=2, n_head=2) if a.quick else dict(n_embd=768, n_layer=12, n_head=12)
    torch.manual_seed(0)
    base = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab_size,
            n_positions=max(a.prompt_lengths) + a.completion_length + 8,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            **shape,
        )
    )
    # One trainer per implementation runs every setting: step 0 is a warm-up (first-call costs), then
    # `repeats` timed steps per prompt length, shortest first; per-length trainers would need a
    # warm-up each, which at 1024 tokens costs as much as the timed step.
    lengths = [min(a.prompt_lengths)] + [n for n in a.prompt_lengths for _ in range(a.repeats)]
    prompts = make_prompts(tokenizer, lengths)
    print(
        f"model: GPT-2 {shape}, vocab {vocab_size}, G={a.group_size}, {a.completion_length} new tokens, {a.repeats} timed step(s) "
        f"per prompt length after 1 warm-up step, threads={torch.get_num_threads()}",
        flush=True,
    )
    timers = {}
    with tempfile.TemporaryDirectory() as tmp:
        # one trainer at a time: two GPT-2-small copies with Adam states would double the memory
        for name, (cls, config_cls) in {
            "ours": (ReasoningGRPOTrainer, ReasoningGRPOConfig),
            "reference": (GRPOTrainer, GRPOConfig),
        }.items():
            timers[name] = StepTimer()
            trainer = build(
                cls, config_cls, copy.deepcopy(base), tokenizer, prompts, a, os.path.join(tmp, name), timers[name]
            )
            torch.manual_seed(0)
            trainer.train()
            del trainer
    gen_ratio = {}
    for length in a.prompt_lengths:
        steps = [i for i, n in enumerate(lengths) if n == length and i > 0]
        gen = {n: statistics.median(t.gen_times[i] for i in steps) for n, t in timers.items()}
        step = {n: statistics.median(t.step_times[i] for i in steps) for n, t in timers.items()}
        same = all(timers["ours"].completions[i] == timers["reference"].completions[i] for i in steps)
        real_len = len(tokenizer(prompts[steps[0]])["input_ids"])
        print(
            f"gen@{length}: ours {gen['ours']:.3f} s, reference {gen['reference']:.3f} s, "
            f"ratio {gen['reference'] / gen['ours']:.2f} (prompt {real_len} tokens, "
            f"identical completions: {same})",
            flush=True,
        )
        print(
            f"step@{length}: ours {step['ours']:.3f} s, reference {step['reference']:.3f} s, "
            f"ratio {step['reference'] / step['ours']:.2f}",
            flush=True,
        )
        gen_ratio[length] = gen["reference"] / gen["ours"]
    goal = f"goal: >= {GOAL_RATIO:g}x faster generation at {GOAL_LENGTH} prompt tokens, GPT-2-small shape"
    if GOAL_LENGTH not in gen_ratio:
        print(f"{goal}: not measured (no --prompt_lengths {GOAL_LENGTH})")
    elif a.quick or vocab_size != GPT2_SMALL_VOCAB_SIZE or a.completion_length != 32 or a.group_size != 8:
        print(f"{goal}: not judged (this run is not the goal's setting; ratio {gen_ratio[GOAL_LENGTH]:.2f})")
    else:
        verdict = "MET" if gen_ratio[GOAL_LENGTH] >= GOAL_RATIO else "NOT MET"
        print(f"{goal}: {verdict} (ratio {gen_ratio[GOAL_LENGTH]:.2f})")


if __name__ == "__main__":
    main()
