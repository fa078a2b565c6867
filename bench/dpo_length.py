"""Length drift under a length-biased preference set: stock DPO, stock DPO + ld_alpha, ours.

The training pairs prefer the correct arithmetic completion, and the chosen one is the longer in
80% of pairs (`generate_length_biased_preferences(bias=0.8)`): a spurious cue. Held-out pairs have
no length bias (`bias=0.5`), so held-out preference accuracy measures the learned *correctness*
preference. From one SFT start (completion-only loss on unbiased data), three DPO runs with the
same steps, learning rate, beta and seed:

  * stock   - `trl.DPOTrainer`, loss_type="sigmoid"
  * ld      - `trl.DPOTrainer`, ld_alpha = --alpha (LD-DPO over the whole completion)
  * ours    - `LengthBalancedDPOTrainer`, think_alpha = --alpha, answer scored in full,
              length-balanced batches

Reported: held-out preference accuracy (the policy's chosen-minus-rejected log-ratio margin above
the start's, with its Wilson 95% interval) and the mean generated length on held-out prompts
(sampled at temperature 1, and greedy) with its drift from the SFT start (tokens, after - before).
The SFT start must stop at EOS for drift to be measurable: the script prints the share of its
generations that hit the length cap and warns when it is over 10%.
Prints one table, then `name: ours X, reference Y, ratio Z` lines (reference = stock DPO).

    OMP_NUM_THREADS=1 python bench/dpo_length.py   # full: ~6 min on one quiet CPU core
    python bench/dpo_length.py --quick    # tiny: about a minute
"""

import argparse
import os
import statistics
import tempfile
import time


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PrinterCallback  # noqa: E402
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

from hf_reason.data import build_tokenizer, generate_length_biased_preferences  # noqa: E402
from hf_reason.evaluation.statistics import format_proportion  # noqa: E402
from hf_reason.trainers import LengthBalancedDPOConfig, LengthBalancedDPOTrainer  # noqa: E402


COMMON = dict(
    report_to=[], save_strategy="no", use_cpu=True, bf16=False, logging_steps=50, gradient_checkpointing=False
)


def quiet(trainer):
    trainer.remove_callback(PrinterCallback)
    return trainer


@torch.no_grad()
def sequence_logps(model, tokenizer, prompts, completions, batch_size=16):
    model.eval()
    out = []
    for s in range(0, len(prompts), batch_size):
        rows, masks = [], []
        for p, c in zip(prompts[s : s + batch_size], completions[s : s + batch_size]):
            p_ids = tokenizer(p)["input_ids"]
            c_ids = tokenizer(c)["input_ids"] + [tokenizer.eos_token_id]
            rows.append(p_ids + c_ids)
            masks.append([0] * len(p_ids) + [1] * len(c_ids))
        width = max(map(len, rows))
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
        attn = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        comp = torch.tensor([m + [0] * (width - len(m)) for m in masks])
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        token = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
        out.extend((token * comp[:, 1:]).sum(1).tolist())
    return out


def preference_accuracy(policy, reference, tokenizer, pairs) -> tuple[int, int]:
    def margin(model):
        c = sequence_logps(model, tokenizer, pairs["prompt"], pairs["chosen"])
        r = sequence_logps(model, tokenizer, pairs["prompt"], pairs["rejected"])
        return [a - b for a, b in zip(c, r)]

    policy_margin, reference_margin = margin(policy), margin(reference)
    wins = sum(1 for p, r in zip(policy_margin, reference_margin) if p - r > 0)
    return wins, len(policy_margin)


@torch.no_grad()
def generated_lengths(model, tokenizer, prompts, max_new_tokens, do_sample, seed=1234) -> list[int]:
    """Completion length in tokens (EOS included) per prompt; `max_new_tokens` when it never stopped.

    Sampling (temperature 1, no top-k / top-p) measures the mean length of the policy's own
    distribution, which is what DPO shifts; greedy shows the mode. Every model draws from the same
    seeded RNG stream.
    """
    model.eval()
    torch.manual_seed(seed)
    lengths = []
    for s in range(0, len(prompts), 32):
        batch = tokenizer(prompts[s : s + 32], return_tensors="pt", padding=True, padding_side="left")
        sampling = dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0) if do_sample else dict(do_sample=False)
        out = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
        for row in out[:, batch["input_ids"].size(1) :].tolist():
            lengths.append(row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row))
    return lengths


def length_summary(model, tokenizer, prompts, max_new_tokens, samples) -> dict:
    sampled = generated_lengths(model, tokenizer, list(prompts) * samples, max_new_tokens, do_sample=True)
    greedy = generated_lengths(model, tokenizer, prompts, max_new_tokens, do_sample=False)
    return {
        "sampled": statistics.fmean(sampled),
        "sampled_se": statistics.stdev(sampled) / len(sampled) ** 0.5,
        "greedy": statistics.fmean(greedy),
        "capped": sum(n >= max_new_tokens for n in sampled) / len(sampled),
    }


def log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.0f} s] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model and data: checks the script runs")
    parser.add_argument("--alpha", type=float, default=0.3, help="ld_alpha for stock LD-DPO and think_alpha for ours")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--num_train", type=int, default=None, help="training pairs (default 2000; quick 64)")
    parser.add_argument("--num_heldout", type=int, default=None, help="held-out pairs (default 400; quick 32)")
    parser.add_argument("--sft_steps", type=int, default=None, help="default 600 (quick 10)")
    parser.add_argument("--dpo_steps", type=int, default=None, help="default 250 (quick 8)")
    parser.add_argument(
        "--dpo_lr",
        type=float,
        default=None,
        help="DPO learning rate, full fine-tuning (default 1e-4; at 5e-4 every method degenerates to the cap)",
    )
    parser.add_argument("--seed", type=int, default=0, help="model init and training order (the data are fixed)")
    parser.add_argument("--hidden_size", type=int, default=None, help="default 128 (quick 32)")
    parser.add_argument("--num_layers", type=int, default=None, help="default 2 (quick 1)")
    parser.add_argument(
        "--samples", type=int, default=None, help="sampled generations per held-out prompt (default 2)"
    )
    parser.add_argument(
        "--max_ops",
        type=int,
        default=3,
        help="most operators per problem (1..3). The right and wrong completions differ only in the "
        "last step's result, so with 2-3 operators a small model stays near chance on preference "
        "accuracy; --max_ops 1 --max_value 9 (243 problems, recurring in held-out pairs) is learnable",
    )
    parser.add_argument("--max_value", type=int, default=20, help="largest operand")
    a = parser.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n_train = a.num_train or (64 if a.quick else 2000)
    n_heldout = a.num_heldout or (32 if a.quick else 400)
    sft_steps = a.sft_steps or (10 if a.quick else 600)
    dpo_steps = a.dpo_steps or (8 if a.quick else 250)
    samples = a.samples or (1 if a.quick else 2)
    width = a.hidden_size or (32 if a.quick else 128)
    shape = dict(n_embd=width, n_layer=a.num_layers or (1 if a.quick else 2), n_head=max(1, width // 32))
    # the longest reference completion is ~80 tokens: a model that stops at EOS stays well under the cap
    max_new = 48 if a.quick else 128
    started = time.perf_counter()

    problems = dict(max_ops=a.max_ops, max_value=a.max_value)
    train = generate_length_biased_preferences(n_train, bias=0.8, seed=0, **problems)
    heldout = generate_length_biased_preferences(n_heldout, bias=0.5, seed=1, **problems)
    sft_data = generate_length_biased_preferences(n_train, bias=0.5, seed=2, **problems)
    texts = [p + c for p, c in zip(sft_data["prompt"], sft_data["chosen"])] + list(train["rejected"])
    tokenizer = build_tokenizer(vocab_size=512, texts=texts, extra_special_tokens=("<think>", "</think>"))

    def token_len(texts):
        return statistics.fmean(len(tokenizer(t)["input_ids"]) + 1 for t in texts)  # + EOS

    torch.manual_seed(a.seed)
    start = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=256,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            **shape,
        )
    )
    log(
        f"GPT-2 {shape}; {n_train} train pairs (chosen longer in {sum(train['chosen_longer'])}), {n_heldout} held-out "
        f"pairs (chosen longer in {sum(heldout['chosen_longer'])}); SFT {sft_steps} steps, DPO {dpo_steps} steps",
        started,
    )
    with tempfile.TemporaryDirectory() as tmp:
        sft = quiet(
            SFTTrainer(
                model=start,
                processing_class=tokenizer,
                train_dataset=Dataset.from_dict({"prompt": sft_data["prompt"], "completion": sft_data["chosen"]}),
                args=SFTConfig(
                    output_dir=os.path.join(tmp, "sft"),
                    max_steps=sft_steps,
                    learning_rate=2e-3,
                    lr_scheduler_type="cosine",
                    warmup_steps=min(100, sft_steps // 10),
                    per_device_train_batch_size=16,
                    completion_only_loss=True,
                    disable_tqdm=a.quick,
                    seed=a.seed,
                    **COMMON,
                ),
            )
        )
        sft.train()
        # every run loads the start from disk: TRL patches `model.forward` with a closure over the model
        # object, so a deepcopy of a trained model would still compute with the original's weights
        sft.save_model(os.path.join(tmp, "start"))

        def load_start():
            return GPT2LMHeadModel.from_pretrained(os.path.join(tmp, "start"))

        start = load_start()
        base = length_summary(start, tokenizer, heldout["prompt"], max_new, samples)
        log(
            f"SFT start: sampled length {base['sampled']:.1f} tokens ({base['capped']:.1%} hit the {max_new}-token cap), "
            f"greedy {base['greedy']:.1f}; SFT data completions {token_len(sft_data['chosen']):.1f} tokens",
            started,
        )
        if base["capped"] > 0.1:
            print(
                f"WARNING: {base['capped']:.0%} of the SFT start's generations hit the cap: it has not learned to "
                "stop, so length drift is not measurable; train it longer (--sft_steps)",
                flush=True,
            )

        pairs = train.select_columns(["prompt", "chosen", "rejected"])
        dpo_common = dict(
            max_steps=dpo_steps,
            learning_rate=a.dpo_lr or (1e-3 if a.quick else 1e-4),
            beta=a.beta,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=min(20, dpo_steps // 10),
            per_device_train_batch_size=8,
            disable_tqdm=a.quick,
            seed=a.seed,
            **COMMON,
        )
        runs = {
            "stock": (DPOTrainer, DPOConfig(output_dir=os.path.join(tmp, "stock"), **dpo_common)),
            "ld": (DPOTrainer, DPOConfig(output_dir=os.path.join(tmp, "ld"), ld_alpha=a.alpha, **dpo_common)),
            "ours": (
                LengthBalancedDPOTrainer,
                LengthBalancedDPOConfig(output_dir=os.path.join(tmp, "ours"), think_alpha=a.alpha, **dpo_common),
            ),
        }
        results = {}
        for name, (cls, args) in runs.items():
            torch.manual_seed(a.seed)
            trainer = quiet(
                cls(
                    model=load_start(),
                    ref_model=load_start(),
                    args=args,
                    train_dataset=pairs,
                    processing_class=tokenizer,
                )
            )
            trainer.train()
            wins, n = preference_accuracy(trainer.model, start, tokenizer, heldout)
            results[name] = (wins, length_summary(trainer.model, tokenizer, heldout["prompt"], max_new, samples))
            log(f"{name}: done", started)

    labels = {"stock": "DPO (sigmoid)", "ld": f"DPO ld_alpha={a.alpha}", "ours": f"LengthBalancedDPO a={a.alpha}"}
    print(
        f"\nheld-out: {n} pairs without length bias; lengths: {len(heldout) * samples} sampled generations "
        f"(temperature 1) and {len(heldout)} greedy, tokens incl. EOS, cap {max_new}"
    )
    header = (
        f"{'method':<28} {'held-out pref. accuracy':<28} {'sampled len':>11} {'drift':>13} {'greedy len':>10} "
        f"{'drift':>7} {'capped':>7}"
    )
    print(header)
    print(
        f"{'SFT start':<28} {'-':<28} {base['sampled']:>11.1f} {'':>13} {base['greedy']:>10.1f} {'':>7} "
        f"{base['capped']:>7.1%}"
    )
    for name, (wins, summary) in results.items():
        drift = summary["sampled"] - base["sampled"]
        se = (summary["sampled_se"] ** 2 + base["sampled_se"] ** 2) ** 0.5
        print(
            f"{labels[name]:<28} {format_proportion(wins, n):<28} {summary['sampled']:>11.1f} "
            f"{f'{drift:+.1f} +- {se:.1f}':>13} {summary['greedy']:>10.1f} {summary['greedy'] - base['greedy']:>+7.1f} "
            f"{summary['capped']:>7.1%}"
        )
    drift = {k: v[1]["sampled"] - base["sampled"] for k, v in results.items()}
    acc = {k: v[0] / n for k, v in results.items()}

    def ratio(x, y):
        return f"{x / y:.2f}" if y else "n/a"

    print(
        f"length drift vs stock DPO: ours {drift['ours']:+.1f}, reference {drift['stock']:+.1f}, "
        f"ratio {ratio(abs(drift['ours']), abs(drift['stock']))}"
    )
    print(
        f"length drift vs ld_alpha: ours {drift['ours']:+.1f}, reference {drift['ld']:+.1f}, "
        f"ratio {ratio(abs(drift['ours']), abs(drift['ld']))}"
    )
    print(
        f"held-out accuracy vs stock DPO: ours {acc['ours']:.3f}, reference {acc['stock']:.3f}, "
        f"ratio {ratio(acc['ours'], acc['stock'])}"
    )
    print(
        f"held-out accuracy vs ld_alpha: ours {acc['ours']:.3f}, reference {acc['ld']:.3f}, "
        f"ratio {ratio(acc['ours'], acc['ld'])}"
    )


if __name__ == "__main__":
    main()
