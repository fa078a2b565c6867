"""Training throughput of TRM at the method's reference Sudoku configuration, on this CPU.

Configuration of the reference run: hidden 512, 2 layers, H=3, L=6, MLP mixer over 81 cells + 16
puzzle-embedding positions, expansion 4, ~43 GFLOP per sample per supervision step.

What one timed step is, exactly: a bare loop over the model's compute, not the trainer. It runs
`TRMForPuzzleSolving.forward` on one fixed random batch from the previous step's carry (with labels:
the recursion, token loss and halting loss; bf16 autocast or fp32), `loss.backward()` (through the
last H-cycle), one `torch.optim.AdamW` step over all parameters (the puzzle embedding included) and
`zero_grad`. Not timed: what `DeepSupervisionTrainer` adds around that compute, i.e. the Trainer
loop, data loading and collation, replacing halted rows, the per-step metrics (which synchronise
with `.item()`), the EMA update, the sign-SGD step of the puzzle embedding, the LR scheduler and
logging callbacks. (Gradient clipping is off by default in DeepSupervisionConfig, as in the
reference, so this loop does not clip either.)

Memory: each setting runs in its own subprocess, and "peak RSS" is that process's
`ru_maxrss` (resident set size high-water mark, Linux): it includes the Python interpreter, torch
and the model (the "at start" value is the same measure taken before the model is built), not
only the training step's tensors.

Prints one line per setting (batch 8 / 64, bf16 autocast / fp32, eager / torch.compile) next to
the reference implementation's eager numbers, measured on this machine when it was quiet (the
reference cannot be shipped or fetched here, so its numbers are constants).

    python bench/trm_throughput.py                  # all settings
    python bench/trm_throughput.py --batch 8 --dtype bf16 --mode eager --profile
"""

import argparse
import json
import os
import subprocess
import sys
import time


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402

from hf_reason import TRMConfig, TRMForPuzzleSolving  # noqa: E402


# Reference implementation (eager, bf16 forward dtype / fp32), measured here on a quiet machine.
REFERENCE_STEPS_PER_S = {(8, "bf16"): 1.06, (8, "fp32"): 0.37, (64, "bf16"): 0.11}
REFERENCE_PEAK_GB = {(64, "bf16"): 4.4}
FLOP_PER_SAMPLE = 43e9


def reference_config() -> TRMConfig:
    return TRMConfig(
        vocab_size=11,
        seq_len=81,
        hidden_size=512,
        num_heads=8,
        expansion=4,
        L_layers=2,
        H_cycles=3,
        L_cycles=6,
        halt_max_steps=16,
        mixer="mlp",
        pos_encodings="none",
        puzzle_emb_ndim=512,
        puzzle_emb_len=16,
        num_puzzle_identifiers=2,
    )


def peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measure(batch: int, dtype: str, mode: str, steps: int, warmup: int, profile: bool = False) -> dict:
    start_rss_gb = peak_rss_gb()  # interpreter + torch, before the model exists
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(reference_config()).train()
    if mode == "compile":
        # Compile the block: the recursion applies it 42 times per step with identical shapes.
        for block in model.model.layers:
            block.compile(dynamic=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    input_ids = torch.randint(1, 11, (batch, 81))
    labels = torch.randint(2, 11, (batch, 81))
    puzzle_ids = torch.ones(batch, dtype=torch.long)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")
    carry = None

    def step():
        nonlocal carry
        with autocast:
            out = model(input_ids, labels=labels, puzzle_identifiers=puzzle_ids, carry=carry)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        carry = out.carry

    compile_start = time.perf_counter()
    for _ in range(warmup):
        step()
    warmup_s = time.perf_counter() - compile_start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    result = {
        "steps_per_s": steps / elapsed,
        "warmup_s": warmup_s,
        "peak_rss_gb": peak_rss_gb(),
        "start_rss_gb": start_rss_gb,
    }
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="*", default=[8, 64])
    parser.add_argument("--dtype", nargs="*", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    parser.add_argument("--mode", nargs="*", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--steps", type=int, default=4, help="Timed steps per setting (the bare loop above).")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed steps (compilation happens here).")
    parser.add_argument("--profile", action="store_true", help="Print a torch.profiler table of one step.")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)  # one setting, JSON out
    args = parser.parse_args()
    if args.single:
        result = measure(args.batch[0], args.dtype[0], args.mode[0], args.steps, args.warmup, args.profile)
        print("RESULT " + json.dumps(result))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for batch in args.batch:
        for dtype in args.dtype:
            for mode in args.mode:
                # A fresh process per setting: peak memory is per setting, and compiled code and
                # allocator caches of one setting do not help the next.
                cmd = [
                    sys.executable,
                    __file__,
                    "--single",
                    "--batch",
                    str(batch),
                    "--dtype",
                    dtype,
                    "--mode",
                    mode,
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                ] + (["--profile"] if args.profile else [])
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"trm_throughput batch={batch} {dtype} {mode}: failed: {proc.stderr.strip()[-500:]}")
                    continue
                lines = proc.stdout.splitlines()
                print("\n".join(line for line in lines if not line.startswith("RESULT ")), end="")
                r = json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])
                reference = REFERENCE_STEPS_PER_S.get((batch, dtype))
                gflops = r["steps_per_s"] * batch * FLOP_PER_SAMPLE / 1e9
                ref_mem = REFERENCE_PEAK_GB.get((batch, dtype))
                ref_text = (
                    (
                        f"reference(eager) {reference:.2f} steps/s"
                        + (f" / {ref_mem:.1f} GB peak" if ref_mem else "")
                        + f", ratio {r['steps_per_s'] / reference:.2f}"
                    )
                    if reference
                    else "reference not measured"
                )
                print(
                    f"trm_throughput batch={batch} {dtype} {mode}: ours {r['steps_per_s']:.3f} steps/s "
                    f"({gflops:.0f} GFLOP/s, process peak RSS {r['peak_rss_gb']:.1f} GB "
                    f"[{r['start_rss_gb']:.1f} GB at start], warm-up {r['warmup_s']:.0f} s), "
                    f"{ref_text}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
