"""Generation time and step time: ReasoningGRPOTrainer (one prefill per group) vs stock trl.GRPOTrainer.

Same model weights, data, seed and generation settings for both; G = 8 completions per prompt, one
prompt per per-device batch (as GRPO groups are laid out), prompts of 256 and 1024 tokens, a
GPT-2-small-shaped model (12 layers, 768 wide; `--quick`: 2 layers, 64 wide, short prompts).
Prints, per prompt length, one line for generation and one for the whole training step:

    gen@1024: ours X s, reference Y s, ratio Z        (ratio = reference / ours: the speed-up)

and whether both produced identical completions under the same seed.

    python bench/grpo_prefill.py            # full: ~25-40 min on 2 quiet CPU cores (1024-token steps dominate)
    python bench/grpo_prefill.py --quick    # tiny shapes: under a minute
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


def length_reward(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]


class StepTimer(TrainerCallback):
    def __init__(self):
        self.durations, self._start = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self._start)


def make_prompts(tokenizer, length: int, count: int) -> list[str]:
    text = " ".join(load_text_corpus("train")["text"])
    ids = tokenizer(text)["input_ids"]
    prompts = []
    for i in range(count):
        start = (i * 997) % max(1, len(ids) - length)
        prompts.append(tokenizer.decode(ids[start : start + length]))
    return prompts


def build(cls, config_cls, model, tokenizer, prompts, args_ns, out_dir, timer):
    args = config_cls(
        output_dir=out_dir, per_device_train_batch_size=args_ns.group_size, num_generations=args_ns.group_size,
        max_completion_length=args_ns.completion_length, max_steps=args_ns.steps, learning_rate=1e-5,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False, seed=0, disable_tqdm=True,
        gradient_checkpointing=False,
    )
    trainer = cls(
        model=model, reward_funcs=length_reward, args=args, train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer, callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)  # one comparison line per setting, not the per-step logs
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and prompts: checks the script runs")
    parser.add_argument("--prompt_lengths", type=int, nargs="+", default=None, help="default 256 1024 (quick: 32 64)")
    parser.add_argument("--group_size", type=int, default=8, help="G, completions per prompt")
    parser.add_argument("--completion_length", type=int, default=None, help="new tokens (default 32; quick 8)")
    parser.add_argument("--steps", type=int, default=None, help="training steps timed per trainer (default 3)")
    parser.add_argument("--repeats", type=int, default=None, help="timed generation calls (median; default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = parser.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    a.prompt_lengths = a.prompt_lengths or ([32, 64] if a.quick else [256, 1024])
    a.completion_length = a.completion_length or (8 if a.quick else 32)
    a.steps = a.steps or (2 if a.quick else 3)
    a.repeats = a.repeats or (2 if a.quick else 3)

    tokenizer = build_tokenizer(vocab_size=1024)
    shape = dict(n_embd=64, n_layer=2, n_head=2) if a.quick else dict(n_embd=768, n_layer=12, n_head=12)
    torch.manual_seed(0)
    base = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer), n_positions=max(a.prompt_lengths) + a.completion_length + 8,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, **shape,
        )
    )
    print(f"model: GPT-2 {shape}, G={a.group_size}, {a.completion_length} new tokens, threads={torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        for length in a.prompt_lengths:
            prompts = make_prompts(tokenizer, length, a.steps + 1)
            timers = {"ours": StepTimer(), "reference": StepTimer()}
            trainers = {
                "ours": build(ReasoningGRPOTrainer, ReasoningGRPOConfig, copy.deepcopy(base), tokenizer, prompts, a,
                              os.path.join(tmp, f"ours{length}"), timers["ours"]),
                "reference": build(GRPOTrainer, GRPOConfig, copy.deepcopy(base), tokenizer, prompts, a,
                                   os.path.join(tmp, f"ref{length}"), timers["reference"]),
            }
            prompt_ids = [tokenizer(prompts[0])["input_ids"]] * a.group_size
            gen_times, outputs = {}, {}
            for name, trainer in trainers.items():
                trainer.model.train()
                trainer._generate_single_turn(prompt_ids, None, {}, a.group_size)  # warm-up
                times = []
                for r in range(a.repeats):
                    torch.manual_seed(1000 + r)
                    start = time.perf_counter()
                    completions, _ = trainer._generate_single_turn(prompt_ids, None, {}, a.group_size)
                    times.append(time.perf_counter() - start)
                    outputs.setdefault(name, []).append(completions)
                gen_times[name] = statistics.median(times)
            for name, trainer in trainers.items():
                torch.manual_seed(0)
                trainer.train()
            step_times = {n: statistics.median(t.durations[1:] or t.durations) for n, t in timers.items()}
            same = outputs["ours"] == outputs["reference"]
            real_len = len(prompt_ids[0])
            print(f"gen@{length}: ours {gen_times['ours']:.3f} s, reference {gen_times['reference']:.3f} s, "
                  f"ratio {gen_times['reference'] / gen_times['ours']:.2f} (prompt {real_len} tokens, "
                  f"identical completions: {same})")
            print(f"step@{length}: ours {step_times['ours']:.3f} s, reference {step_times['reference']:.3f} s, "
                  f"ratio {step_times['reference'] / step_times['ours']:.2f}")


if __name__ == "__main__":
    main()
