"""CRSM measurements, each printed as `name: ours X, reference Y, ratio Z` from one run.

1. Perplexity on the held-out `test` split of the offline corpus; reference: a unigram model
   (add-one smoothed) fitted on the `train` split with the same tokenizer.
2. MCTS ablation on held-out arithmetic: accuracy (exact `is_correct`, Wilson 95 % intervals) at
   several simulation budgets against greedy decoding, and the compute cost: generated tokens/s and
   wall time, relative to greedy, measured in the same run. With `--state_delta prompt` (or
   `token`) each budget also runs with the state delta on (`apply_state_delta`), compared with the
   same budget without it.
3. Backbone speed against transformers' `MambaForCausalLM` of the same size (same weights copied
   in): training-step tokens/s (forward + backward) and decoding tokens/s (`generate`, greedy),
   with the two measured alternately, best of `--repeats` (`--skip_speed` leaves it out: timings
   on a busy machine mean nothing).
4. The asynchronous mode (on by default; `--stream_consumer_ms 0` leaves it out): MCTS generation
   at `--stream_budget` simulations with a streamer whose consumer spends `--stream_consumer_ms`
   (20) ms on each token (an I/O wait: a network send, speech synthesis), once with `generate` in a
   thread so the search for the next token runs while the consumer handles the current one
   (ours), once with the consumer inline in the streamer (reference); one line, the wall time
   until the consumer has every token. The ratio is about max(search, consumer) / (search +
   consumer) per token when the overlap works, 1 when it does not.

Without `--model_dir` a randomly initialised CRSM is measured (speed is meaningful; perplexity and
accuracy are then only a smoke test). With a trained checkpoint (e.g. `runs/crsm/4_joint/final`
from examples/train_crsm.py) all three are meaningful.

    python bench/crsm.py --model_dir runs/crsm/4_joint/final
    python bench/crsm.py --model_dir runs/crsm-small/4_joint/final --max_value 9 --skip_speed
    python bench/crsm.py --quick
"""

import argparse
import math
import os
import queue
import threading
import time
from collections import Counter


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import AutoTokenizer, MambaConfig, MambaForCausalLM  # noqa: E402
from transformers.generation.streamers import BaseStreamer  # noqa: E402

from hf_reason import CRSMConfig, CRSMForCausalLM  # noqa: E402
from hf_reason.data import build_tokenizer, generate_arithmetic, is_correct, load_text_corpus  # noqa: E402
from hf_reason.evaluation.statistics import wilson_interval  # noqa: E402


def line(name: str, ours: float, reference: float, fmt: str = "{:.3f}", extra: str = "") -> None:
    ratio = ours / reference if reference else float("nan")
    print(f"{name}: ours {fmt.format(ours)}, reference {fmt.format(reference)}, ratio {ratio:.3f}{extra}", flush=True)


def load(args):
    if args.model_dir:
        return CRSMForCausalLM.from_pretrained(args.model_dir).eval(), AutoTokenizer.from_pretrained(args.model_dir)
    tokenizer = build_tokenizer(vocab_size=args.vocab_size)
    torch.manual_seed(0)
    config = CRSMConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return CRSMForCausalLM(config).eval(), tokenizer


@torch.no_grad()
def perplexity(model, tokenizer, texts, max_len: int) -> float:
    nll, count = 0.0, 0
    for text in tqdm(texts, desc="perplexity", leave=False):
        ids = tokenizer(text + tokenizer.eos_token, verbose=False).input_ids[:max_len]
        if len(ids) < 2:
            continue
        ids = torch.tensor([ids])
        loss = model(input_ids=ids, labels=ids).loss
        nll += loss.item() * (ids.shape[1] - 1)
        count += ids.shape[1] - 1
    return math.exp(nll / count)


def unigram_perplexity(tokenizer, train_texts, test_texts, max_len: int) -> float:
    counts = Counter()
    for text in train_texts:
        counts.update(tokenizer(text + tokenizer.eos_token, verbose=False).input_ids)
    total, vocab = sum(counts.values()), len(tokenizer)
    nll, count = 0.0, 0
    for text in test_texts:
        ids = tokenizer(text + tokenizer.eos_token, verbose=False).input_ids[:max_len]
        for token in ids[1:]:
            nll -= math.log((counts[token] + 1) / (total + vocab))
            count += 1
    return math.exp(nll / count)


def accuracy_run(model, tokenizer, problems, max_new_tokens: int, **generate_kwargs):
    correct, generated, start = [], 0, time.perf_counter()
    if not generate_kwargs:
        generate_kwargs = {"do_sample": False}
    desc = f"mcts-{generate_kwargs['num_simulations']}" if "num_simulations" in generate_kwargs else "greedy"
    if generate_kwargs.get("apply_state_delta"):
        desc += f" +delta({generate_kwargs['apply_state_delta']})"
    for prompt, answer in tqdm(list(zip(problems["prompt"], problems["answer"])), desc=desc, leave=False):
        ids = torch.tensor([tokenizer(prompt).input_ids])
        out = model.generate(
            ids, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **generate_kwargs
        )
        new = out[0, ids.shape[1] :]
        generated += len(new)
        correct.append(is_correct(tokenizer.decode(new, skip_special_tokens=True), answer))
    return sum(correct), len(correct), generated, time.perf_counter() - start


def fmt_ci(k: int, n: int) -> str:
    low, high = wilson_interval(k, n)
    return f"{k / n:.3f} [{low:.3f}, {high:.3f}]"


def mamba_twin(model) -> MambaForCausalLM:
    c = model.config
    twin = MambaForCausalLM(
        MambaConfig(
            vocab_size=c.vocab_size,
            hidden_size=c.hidden_size,
            state_size=c.state_size,
            num_hidden_layers=c.num_hidden_layers,
            expand=c.expand,
            conv_kernel=c.conv_kernel,
            time_step_rank=c.time_step_rank,
            use_bias=c.use_bias,
            use_conv_bias=c.use_conv_bias,
            layer_norm_epsilon=c.layer_norm_epsilon,
            residual_in_fp32=c.residual_in_fp32,
            pad_token_id=c.pad_token_id,
            eos_token_id=c.eos_token_id,
            bos_token_id=c.bos_token_id,
        )
    )
    backbone = {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith(("backbone.", "lm_head.")) and ".aggregator." not in k
    }
    twin.load_state_dict(backbone, strict=True)
    return twin.eval()


def train_step_rate(model, ids) -> float:
    model.train()
    start = time.perf_counter()
    model(input_ids=ids, labels=ids).loss.backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    model.eval()
    return ids.numel() / elapsed


@torch.no_grad()
def decode_rate(model, ids, new_tokens: int) -> float:
    start = time.perf_counter()
    # eos is disabled so both models generate exactly `new_tokens`.
    model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return ids.shape[0] * new_tokens / (time.perf_counter() - start)


class ConsumerStreamer(BaseStreamer):
    """Hands each generated token to a consumer that takes `seconds` per token (an I/O wait).

    `inline=True`: the consumer runs inside `put`, so generation waits for it (the reference).
    `inline=False`: tokens go to a queue that `consume` drains in another thread."""

    def __init__(self, seconds: float, inline: bool):
        self.seconds, self.inline, self.queue, self.prompt_seen = seconds, inline, queue.Queue(), False

    def put(self, value):
        if not self.prompt_seen:  # transformers streamers receive the prompt first
            self.prompt_seen = True
            return
        if self.inline:
            time.sleep(self.seconds)
        else:
            self.queue.put(value)

    def end(self):
        self.queue.put(None)

    def consume(self) -> int:
        count = 0
        while self.queue.get() is not None:
            time.sleep(self.seconds)
            count += 1
        return count


def streaming_wall(
    model, tokenizer, prompts, consumer_ms: float, threaded: bool, max_new_tokens: int, **kwargs
) -> float:
    start = time.perf_counter()
    for prompt in prompts:
        ids = torch.tensor([tokenizer(prompt).input_ids])
        streamer = ConsumerStreamer(consumer_ms / 1000, inline=not threaded)
        call = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, streamer=streamer, **kwargs)
        if threaded:
            worker = threading.Thread(target=model.generate, args=(ids,), kwargs=call)
            worker.start()
            streamer.consume()
            worker.join()
        else:
            model.generate(ids, **call)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", help="A trained CRSM checkpoint (with its tokenizer); default: a fresh model.")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: checks that everything runs (seconds).")
    parser.add_argument("--hidden_size", type=int, default=256, help="Width of the fresh model (without --model_dir).")
    parser.add_argument("--num_layers", type=int, default=4, help="Layers of the fresh model.")
    parser.add_argument("--vocab_size", type=int, default=1024, help="Tokenizer size of the fresh model.")
    parser.add_argument("--num_problems", type=int, default=200, help="Held-out arithmetic problems for the ablation.")
    parser.add_argument("--budgets", default="1,4,16,64", help="Comma-separated MCTS simulation budgets.")
    parser.add_argument(
        "--rollout", default="value", choices=("value", "dynamics", "model"), help="MCTS leaf evaluation."
    )
    parser.add_argument("--top_k_expansion", type=int, default=8, help="Candidate tokens per node.")
    parser.add_argument("--c_puct", type=float, default=1.5, help="PUCT exploration weight.")
    parser.add_argument("--max_new_tokens", type=int, default=32, help="Answer length limit.")
    parser.add_argument("--ppl_max_len", type=int, default=256, help="Tokens per held-out paragraph for perplexity.")
    parser.add_argument("--speed_batch", type=int, default=8, help="Batch of the speed comparison.")
    parser.add_argument("--speed_seq_len", type=int, default=128, help="Training-step sequence length.")
    parser.add_argument("--decode_tokens", type=int, default=64, help="Tokens generated per decoding measurement.")
    parser.add_argument(
        "--repeats", type=int, default=3, help="Alternating repetitions of each speed measurement (best kept)."
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads.")
    parser.add_argument("--max_ops", type=int, default=2, help="Most operators of the held-out arithmetic problems.")
    parser.add_argument(
        "--max_value",
        type=int,
        default=20,
        help="Largest operand of the held-out problems (match the training run's).",
    )
    parser.add_argument(
        "--skip_speed",
        action="store_true",
        help="Leave out the wall-clock parts: the MCTS cost lines and the backbone speed comparison.",
    )
    parser.add_argument(
        "--state_delta",
        default="off",
        choices=("off", "prompt", "token"),
        help="Also run every budget with the state delta on: 'prompt' (one correction after the prompt, as train_crsm.py trains it) or 'token' (after every committed token).",
    )
    parser.add_argument(
        "--stream_consumer_ms",
        type=float,
        default=20.0,
        help="Consumer time per token of the asynchronous (streamed) mode measurement; 0 leaves it out.",
    )
    parser.add_argument("--stream_budget", type=int, default=16, help="MCTS simulations of the streaming measurement.")
    parser.add_argument("--stream_problems", type=int, default=20, help="Problems of the streaming measurement.")
    args = parser.parse_args()
    if args.quick:
        args.hidden_size, args.num_layers, args.vocab_size = 32, 1, 300
        args.num_problems, args.budgets, args.max_new_tokens = 4, "1,4", 8
        args.ppl_max_len, args.speed_batch, args.speed_seq_len, args.decode_tokens, args.repeats = 32, 2, 16, 4, 1
        args.stream_problems, args.stream_budget = 2, 4
    torch.set_num_threads(args.threads)
    budgets = [int(b) for b in args.budgets.split(",")]

    model, tokenizer = load(args)
    test_texts = list(load_text_corpus("test")["text"])
    train_texts = list(load_text_corpus("train")["text"])
    if args.quick:
        test_texts, train_texts = test_texts[:4], train_texts[:50]
    ours = perplexity(model, tokenizer, test_texts, args.ppl_max_len)
    line(
        "perplexity (corpus test split) vs unigram",
        ours,
        unigram_perplexity(tokenizer, train_texts, test_texts, args.ppl_max_len),
        "{:.2f}",
    )

    problems = generate_arithmetic(args.num_problems, max_ops=args.max_ops, max_value=args.max_value, seed=987654)
    k0, n0, tokens0, wall0 = accuracy_run(model, tokenizer, problems, args.max_new_tokens)
    greedy_rate = tokens0 / wall0
    search = dict(deliberation="mcts", top_k_expansion=args.top_k_expansion, c_puct=args.c_puct, rollout=args.rollout)
    for budget in budgets:
        k, n, tokens, wall = accuracy_run(
            model, tokenizer, problems, args.max_new_tokens, num_simulations=budget, **search
        )
        line(
            f"mcts-{budget} accuracy vs greedy",
            k / n,
            k0 / n0,
            extra=f"  (ours {fmt_ci(k, n)}, greedy {fmt_ci(k0, n0)}, n={n})",
        )
        if not args.skip_speed:
            line(f"mcts-{budget} tokens/s vs greedy", tokens / wall, greedy_rate, "{:.1f}")
            line(f"mcts-{budget} wall s vs greedy", wall, wall0, "{:.1f}")
        if args.state_delta != "off":
            kd, nd, tokens_d, wall_d = accuracy_run(
                model,
                tokenizer,
                problems,
                args.max_new_tokens,
                num_simulations=budget,
                apply_state_delta=args.state_delta,
                **search,
            )
            line(
                f"mcts-{budget} +state delta ({args.state_delta}) accuracy vs mcts-{budget}",
                kd / nd,
                k / n,
                extra=f"  (ours {fmt_ci(kd, nd)}, without {fmt_ci(k, n)}, n={nd})",
            )
            if not args.skip_speed:
                line(
                    f"mcts-{budget} +state delta ({args.state_delta}) tokens/s vs mcts-{budget}",
                    tokens_d / wall_d,
                    tokens / wall,
                    "{:.1f}",
                )

    if args.stream_consumer_ms > 0:
        prompts = problems["prompt"][: args.stream_problems]
        walls = [
            streaming_wall(
                model,
                tokenizer,
                prompts,
                args.stream_consumer_ms,
                threaded,
                args.max_new_tokens,
                num_simulations=args.stream_budget,
                **search,
            )
            for threaded in (True, False)
        ]
        line(
            f"mcts-{args.stream_budget} streamed wall s, consumer {args.stream_consumer_ms:g} ms/token: threaded vs inline",
            *walls,
            "{:.2f}",
        )

    if args.skip_speed:
        return
    twin = mamba_twin(model)
    g = torch.Generator().manual_seed(0)
    train_ids = torch.randint(4, model.config.vocab_size, (args.speed_batch, args.speed_seq_len), generator=g)
    prompt = torch.randint(4, model.config.vocab_size, (args.speed_batch, 8), generator=g)
    for m in (model, twin):  # untimed warm-up: first calls pay for allocations and lazy imports
        train_step_rate(m, train_ids[:1, :8])
        decode_rate(m, prompt[:1], 2)
    rates = {"train": ([], []), "decode": ([], [])}
    for _ in range(args.repeats):  # alternate, so a busy spell hurts both sides alike
        rates["train"][0].append(train_step_rate(model, train_ids))
        rates["train"][1].append(train_step_rate(twin, train_ids))
        rates["decode"][0].append(decode_rate(model, prompt, args.decode_tokens))
        rates["decode"][1].append(decode_rate(twin, prompt, args.decode_tokens))
    line("backbone training tokens/s vs MambaForCausalLM", max(rates["train"][0]), max(rates["train"][1]), "{:.1f}")
    line("backbone decoding tokens/s vs MambaForCausalLM", max(rates["decode"][0]), max(rates["decode"][1]), "{:.1f}")


if __name__ == "__main__":
    main()
