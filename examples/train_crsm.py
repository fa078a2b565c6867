"""Trains a CRSM in four resumable stages (under `accelerate launch` with 1..N processes).

1. `lm`:       language-model pre-training of the backbone on the offline text corpus
               (`load_text_corpus`) mixed with worked arithmetic (`generate_arithmetic`).
2. `value`:    the state aggregator and value head regress the exact reward (`is_correct`) of
               continuations of arithmetic prompts: continuations sampled from the model, plus the
               gold worked answer (reward 1) and the gold answer with a wrong final number (reward 0),
               at every prefix of the continuation (Monte-Carlo return).
3. `dynamics`: the latent dynamics model is distilled from the backbone's true states:
               predict summary(state_{t+1}) from (summary(state_t), token_{t+1}).
4. `joint`:    all of it fine-tuned together, plus the state-delta module, trained through the real
               recurrence: the prompt state is corrected, then the gold answer is teacher-forced
               one cached step at a time, so the correction is rewarded for making it likelier;
               stage 2's value regression (with its reward-0 continuations) goes on alongside,
               half of its rows from corrected prompt states (what MCTS searches from with
               `apply_state_delta=True`, the one-correction-after-the-prompt that is trained here).

Each stage writes `OUTPUT_DIR/<n>_<stage>/checkpoint` atomically every `--save_steps` (the
accelerate state: model, optimizer, RNG; plus the step) and `OUTPUT_DIR/<n>_<stage>/final` (a
`save_pretrained` model) when done. Rerunning the same command skips finished stages and resumes an
interrupted one from its checkpoint; each stage starts from the previous stage's `final`. Batches
are a function of (seed, step, process), so a resumed run sees the batches it would have seen.

With N processes the model is not wrapped in DDP (the heads are called outside `forward`):
`average_gradients` does DDP's averaging in one all-reduce, and at the end of every stage the
processes compare weight digests (written to `final/processes.json`) and stop if they differ.

    python examples/train_crsm.py --output_dir runs/crsm
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_crsm.py --output_dir runs/crsm
    python examples/train_crsm.py --preset cpu-small --output_dir runs/crsm-small  # ~15 min on 2 quiet CPU cores
    python examples/train_crsm.py --output_dir runs/smoke --hidden_size 32 --num_hidden_layers 1 --vocab_size 300 \
        --lm_steps 4 --value_steps 2 --dynamics_steps 2 --joint_steps 2 --batch_size 2 --seq_len 32
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers import AutoTokenizer, HfArgumentParser  # noqa: E402
from transformers.utils.import_utils import is_mambapy_available  # noqa: E402

from hf_reason import CRSMConfig, CRSMForCausalLM  # noqa: E402
from hf_reason.data import build_tokenizer, generate_arithmetic, is_correct, load_text_corpus  # noqa: E402
from hf_reason.distributed import end_distributed  # noqa: E402
from hf_reason.file_io import atomic_write_json


STAGES = ("lm", "value", "dynamics", "joint")


# Named flag sets; explicit flags on the command line still override them.
PRESETS = {
    # All four stages in ~15 min on 2 quiet CPU cores (a 0.5M-parameter model): perplexity well
    # below the unigram baseline on the held-out corpus and non-zero accuracy on easy arithmetic
    # (1-2 operations, single-digit operands), so bench/crsm.py's MCTS ablation has a signal.
    "cpu-small": dict(
        vocab_size=512,
        hidden_size=128,
        num_hidden_layers=2,
        state_size=8,
        batch_size=16,
        seq_len=128,
        learning_rate=2e-3,
        joint_learning_rate=5e-4,
        lm_steps=1200,
        value_steps=200,
        dynamics_steps=200,
        joint_steps=200,
        arithmetic_fraction=0.8,
        max_ops=2,
        max_value=9,
        max_new_tokens=20,
        dynamics_len=24,
        teacher_tokens=12,
        save_steps=100,
        logging_steps=10,
    ),
}


@dataclass
class CRSMTrainingArguments:
    output_dir: str = field(metadata={"help": "Where the tokenizer, each stage's checkpoint and final model go."})
    preset: Optional[str] = field(
        default=None,
        metadata={
            "help": f"A named flag set, one of {sorted(PRESETS)}; explicit flags override it. 'cpu-small' also turns on `use_mambapy` when the mambapy package is installed."
        },
    )
    stages: str = field(
        default="lm,value,dynamics,joint", metadata={"help": f"Comma-separated subset of {STAGES}, run in that order."}
    )
    vocab_size: int = field(default=1024, metadata={"help": "Byte-level BPE vocabulary size (>= 260)."})
    hidden_size: int = field(default=256, metadata={"help": "Backbone width."})
    num_hidden_layers: int = field(default=4, metadata={"help": "Mamba blocks."})
    state_size: int = field(default=16, metadata={"help": "SSM state size N."})
    aggregator: str = field(default="attention", metadata={"help": "Layer aggregator: 'attention' or 'gated'."})
    delta_damping: float = field(
        default=0.5, metadata={"help": "Fraction of the state correction applied, in [0, 1]."}
    )
    delta_scale: float = field(default=0.1, metadata={"help": "Bound of the state correction (> 0)."})
    use_mambapy: bool = field(
        default=False, metadata={"help": "Parallel scan in training (needs `pip install mambapy`)."}
    )
    batch_size: int = field(default=16, metadata={"help": "Sequences per step and process."})
    seq_len: int = field(default=128, metadata={"help": "Tokens per LM training window (stage 1)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (stages 1-3)."})
    joint_learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate of stage 4."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    lm_steps: int = field(default=2000, metadata={"help": "Optimizer steps of stage 1."})
    value_steps: int = field(default=300, metadata={"help": "Optimizer steps of stage 2."})
    dynamics_steps: int = field(default=500, metadata={"help": "Optimizer steps of stage 3."})
    joint_steps: int = field(default=300, metadata={"help": "Optimizer steps of stage 4."})
    arithmetic_fraction: float = field(
        default=0.5, metadata={"help": "Share of stage-1 text that is worked arithmetic, in [0, 1)."}
    )
    max_ops: int = field(default=2, metadata={"help": "Most operators per arithmetic problem."})
    max_value: int = field(default=20, metadata={"help": "Largest arithmetic operand."})
    max_new_tokens: int = field(default=24, metadata={"help": "Length of the sampled continuations of stage 2."})
    dynamics_len: int = field(default=32, metadata={"help": "Tokens stepped per sequence for dynamics distillation."})
    teacher_tokens: int = field(
        default=12, metadata={"help": "Gold answer tokens teacher-forced through the corrected state (stage 4)."}
    )
    delta_l2: float = field(default=1e-2, metadata={"help": "Penalty on the mean squared state correction (stage 4)."})
    save_steps: int = field(default=100, metadata={"help": "Checkpoint every this many steps."})
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of the model init and of every batch."})
    use_cpu: bool = field(default=not torch.cuda.is_available(), metadata={"help": "Train on the CPU."})
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Start stage 1 from this CRSM checkpoint."}
    )

    def __post_init__(self):
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(PRESETS)}, got {self.preset!r}")
        stages = [s.strip() for s in self.stages.split(",") if s.strip()]
        bad = [s for s in stages if s not in STAGES]
        if bad or not stages:
            raise ValueError(f"`stages` must be a comma-separated subset of {STAGES}, got {self.stages!r}")
        self.stage_list = [s for s in STAGES if s in stages]
        if not 0 <= self.arithmetic_fraction < 1:
            raise ValueError(f"`arithmetic_fraction` must be in [0, 1), got {self.arithmetic_fraction}")
        for name in (
            "batch_size",
            "seq_len",
            "save_steps",
            "logging_steps",
            "max_new_tokens",
            "dynamics_len",
            "teacher_tokens",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")


# --- atomic files --------------------------------------------------------------------------------
def replace_dir(tmp: str, final: str) -> None:
    """Swaps a fully written directory into place (a rename is atomic; a half-written one never is)."""
    old = final + ".old"
    if os.path.exists(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


# --- data ------------------------------------------------------------------------------------------
def arithmetic_pool(args, seed: int):
    return generate_arithmetic(5000, min_ops=1, max_ops=args.max_ops, max_value=args.max_value, seed=seed)


def lm_stream(args, tokenizer) -> np.ndarray:
    """One token stream: corpus paragraphs and worked arithmetic interleaved, each ended by eos."""
    texts = list(load_text_corpus("train", seed=args.seed)["text"])
    n_arith = int(len(texts) * args.arithmetic_fraction / (1 - args.arithmetic_fraction))
    arith = generate_arithmetic(max(n_arith, 1), max_ops=args.max_ops, max_value=args.max_value, seed=args.seed + 1)
    texts += [p + c for p, c in zip(arith["prompt"], arith["completion"])]
    order = np.random.default_rng(args.seed).permutation(len(texts))
    eos = tokenizer.eos_token
    ids = tokenizer([texts[i] + eos for i in order], verbose=False).input_ids
    return np.concatenate([np.asarray(x, dtype=np.int64) for x in ids])


def rng_for(args, accelerator, stage: str, step: int) -> np.random.Generator:
    return np.random.default_rng([args.seed, STAGES.index(stage), step, accelerator.process_index])


def left_pad(sequences, pad_id: int):
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, width - len(s) :] = torch.tensor(s)
        mask[i, width - len(s) :] = 1
    return ids, mask


def wrong_answer(completion: str, answer: str, rng) -> str:
    """The gold worked answer with a different final number (an exact reward-0 continuation)."""
    wrong = int(answer) + int(rng.choice([-3, -2, -1, 1, 2, 3]))
    return completion[: completion.rindex("####")] + f"#### {wrong}"


# --- states ----------------------------------------------------------------------------------------
def step_states(model, prompt_ids, prompt_mask, continuation, corrected_rows=None):
    """Stacked SSM states after the prompt and after each continuation token: (T + 1, B, L, D, N).

    Rows where `corrected_rows` (a bool `(B,)`) is true have their prompt state corrected by the
    state-delta module first, as `generate(..., apply_state_delta=True)` does."""
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, use_cache=True)
    cache = out.cache_params
    if corrected_rows is not None and corrected_rows.any():
        plain = list(cache.ssm_states)
        model.apply_state_delta(cache)
        keep = ~corrected_rows.view(-1, 1, 1)
        cache.ssm_states = [torch.where(keep, p, c) for p, c in zip(plain, cache.ssm_states)]
    states = [cache.stacked_ssm_states()]
    position = torch.tensor([model.config.conv_kernel], device=prompt_ids.device)
    for t in range(continuation.shape[1]):
        model(input_ids=continuation[:, t : t + 1], cache_params=cache, cache_position=position, use_cache=True)
        states.append(cache.stacked_ssm_states())
    return torch.stack(states)


# --- stage losses ----------------------------------------------------------------------------------
def lm_loss(model, args, tokenizer, stream, rng, device):
    starts = rng.integers(0, len(stream) - args.seq_len - 1, size=args.batch_size)
    ids = torch.from_numpy(np.stack([stream[s : s + args.seq_len] for s in starts])).to(device)
    return model(input_ids=ids, labels=ids).loss


def value_batch(model, args, tokenizer, pool, rng, device):
    """Prompts, continuations (sampled / gold / wrong) and their exact rewards."""
    rows = pool.select(rng.integers(0, len(pool), size=args.batch_size).tolist())
    prompts = [tokenizer(p).input_ids for p in rows["prompt"]]
    prompt_ids, prompt_mask = left_pad(prompts, tokenizer.pad_token_id)
    prompt_ids, prompt_mask = prompt_ids.to(device), prompt_mask.to(device)
    kind = rng.integers(0, 3, size=args.batch_size)  # 0 sampled, 1 gold, 2 wrong final answer
    torch.manual_seed(int(rng.integers(0, 2**31)))
    with torch.no_grad():
        sampled = model.generate(
            prompt_ids,
            attention_mask=prompt_mask,
            do_sample=True,
            max_new_tokens=args.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )[:, prompt_ids.shape[1] :]
    texts, continuations = [], []
    for i, (completion, answer) in enumerate(zip(rows["completion"], rows["answer"])):
        if kind[i] == 0:
            text = tokenizer.decode(sampled[i], skip_special_tokens=True)
        else:
            text = completion if kind[i] == 1 else wrong_answer(completion, answer, rng)
        texts.append(text)
        continuations.append(tokenizer(text).input_ids[: args.max_new_tokens] or [tokenizer.eos_token_id])
    rewards = torch.tensor([float(is_correct(t, a)) for t, a in zip(texts, rows["answer"])], device=device)
    width = max(len(c) for c in continuations)
    cont = torch.full((len(continuations), width), tokenizer.eos_token_id, dtype=torch.long)
    lengths = torch.tensor([len(c) for c in continuations])
    for i, c in enumerate(continuations):
        cont[i, : len(c)] = torch.tensor(c)
    return prompt_ids, prompt_mask, cont.to(device), lengths.to(device), rewards


def value_loss(model, args, tokenizer, pool, rng, device, corrected_share: float = 0.0):
    """Regression of the exact reward at every prefix; `corrected_share` of the rows (drawn from
    `rng`) start from the corrected prompt state. The states are computed without gradients, so
    only the aggregator and the value head learn here."""
    prompt_ids, prompt_mask, cont, lengths, rewards = value_batch(model, args, tokenizer, pool, rng, device)
    corrected = torch.from_numpy(rng.random(len(rewards)) < corrected_share).to(device) if corrected_share else None
    with torch.no_grad():
        states = step_states(model, prompt_ids, prompt_mask, cont, corrected)  # (T + 1, B, L, D, N)
    T1, B = states.shape[:2]
    summary, _ = model.summarize(states.flatten(0, 1))
    values = model.predict_value(summary).view(T1, B)
    # Every prefix of a continuation is trained towards that continuation's final reward.
    valid = (torch.arange(T1, device=device)[:, None] <= lengths[None, :]).float()
    return (((values - rewards[None, :]) ** 2) * valid).sum() / valid.sum()


def dynamics_loss(model, args, tokenizer, stream, rng, device):
    starts = rng.integers(0, len(stream) - args.dynamics_len - 1, size=args.batch_size)
    ids = torch.from_numpy(np.stack([stream[s : s + args.dynamics_len + 1] for s in starts])).to(device)
    with torch.no_grad():
        states = step_states(model, ids[:, :1], None, ids[:, 1:])  # (T + 1, B, ...)
        summaries = model.summarize(states.flatten(0, 1))[0].view(states.shape[0], states.shape[1], -1)
    tokens = ids[:, 1:].transpose(0, 1)  # (T, B)
    predicted = model.predict_next_summary(summaries[:-1].flatten(0, 1), tokens.flatten())
    return F.mse_loss(predicted, summaries[1:].flatten(0, 1))


def joint_loss(model, args, tokenizer, pool, rng, device):
    rows = pool.select(rng.integers(0, len(pool), size=args.batch_size).tolist())
    prompts = [tokenizer(p).input_ids for p in rows["prompt"]]
    golds = [tokenizer(c).input_ids + [tokenizer.eos_token_id] for c in rows["completion"]]
    # (a) LM on the whole worked answer
    full_ids, full_mask = left_pad([p + g for p, g in zip(prompts, golds)], tokenizer.pad_token_id)
    labels = full_ids.masked_fill(full_mask == 0, -100)
    lm = model(input_ids=full_ids.to(device), attention_mask=full_mask.to(device), labels=labels.to(device)).loss
    # (b) state delta: correct the prompt state, then teacher-force the gold answer through it
    prompt_ids, prompt_mask = left_pad(prompts, tokenizer.pad_token_id)
    out = model(input_ids=prompt_ids.to(device), attention_mask=prompt_mask.to(device), use_cache=True)
    cache = out.cache_params
    summary, _ = model.summarize(cache)
    correction = model.apply_state_delta(cache, summary)
    k = min(args.teacher_tokens, min(len(g) for g in golds))
    gold = torch.tensor([g[:k] for g in golds], device=device)
    position = torch.tensor([model.config.conv_kernel], device=device)
    logits, summaries = [out.logits[:, -1]], [model.summarize(cache)[0]]
    for t in range(k - 1):
        step = model(input_ids=gold[:, t : t + 1], cache_params=cache, cache_position=position, use_cache=True)
        logits.append(step.logits[:, -1])
        summaries.append(model.summarize(cache)[0])
    delta_lm = F.cross_entropy(torch.stack(logits, 1).flatten(0, 1), gold.flatten())
    # (c) dynamics stays consistent with the corrected trajectory (inputs and targets detached: only
    # the dynamics model learns from it).
    if len(summaries) > 1:
        s = torch.stack(summaries)
        dyn = F.mse_loss(
            model.predict_next_summary(s[:-1].flatten(0, 1).detach(), gold[:, 1:k].transpose(0, 1).flatten()),
            s[1:].flatten(0, 1).detach(),
        )
    else:
        dyn = torch.zeros((), device=device)
    # (d) stage 2's value regression keeps running, half of its rows from corrected prompt states so
    # the value head knows the states MCTS searches from with the delta on. There is deliberately
    # no "value of the corrected gold state = 1" term: with gradients through the state, the delta
    # and the backbone learn to move states to where the value head says 1 (gaming the critic,
    # not solving the task); detached, it teaches the head that a corrected state is worth 1, since
    # it has no reward-0 counterpart. (d) covers gold continuations (reward 1) and wrong final
    # answers (reward 0) from both kinds of state, with exact rewards and no gradient into the
    # state. (A reward-1-only term also drifted the value head to ~0.95 everywhere on the
    # cpu-small run, which leaves MCTS nothing to tell its children apart by.)
    critic = value_loss(model, args, tokenizer, pool, rng, device, corrected_share=0.5)
    return lm + delta_lm + dyn + critic + args.delta_l2 * correction.square().mean()


STAGE_LOSS = {"lm": lm_loss, "value": value_loss, "dynamics": dynamics_loss, "joint": joint_loss}


def trainable(model, stage: str):
    if stage == "lm":
        return [
            p
            for n, p in model.named_parameters()
            if n.startswith(("backbone.", "lm_head.")) and ".aggregator." not in n
        ]
    if stage == "value":
        return list(model.value_head.parameters()) + list(model.backbone.aggregator.parameters())
    if stage == "dynamics":
        return list(model.dynamics.parameters())
    return list(model.parameters())


# --- gradients and weights across processes ---------------------------------------------------------
def average_gradients(accelerator, params) -> None:
    """Averages `params`' gradients over the processes, with DDP's semantics, in one all-reduce.

    The model is not wrapped in DDP (see `run_stage`), so this does its job: a parameter that got
    no gradient on a process (unused there) counts as a zero gradient in the mean, and one that got
    none on any process keeps `grad=None`, so AdamW skips it (no weight decay, no moment update)
    exactly as it would in a single process.
    """
    if accelerator.num_processes == 1:
        return
    used = torch.tensor([float(p.grad is not None) for p in params], device=accelerator.device)
    flat = torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params] + [used]
    )
    flat = accelerator.reduce(flat, reduction="sum")
    offset = 0
    for p, users in zip(params, flat[-len(params) :].tolist()):
        n = p.numel()
        if users > 0:
            p.grad = (flat[offset : offset + n] / accelerator.num_processes).view_as(p).to(p.dtype)
        offset += n


def weights_digest(model) -> bytes:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()


def check_processes_agree(accelerator, model, stage: str, first_local_loss: Optional[float]):
    """Every process's weights digest and its own (not averaged) first loss, gathered on all of them.

    Raises if the processes ended the stage with different weights: a diverged run must not be saved
    as if it were one model."""
    digest = torch.tensor(list(weights_digest(model)), dtype=torch.int64, device=accelerator.device)
    loss = torch.tensor([float("nan") if first_local_loss is None else first_local_loss], device=accelerator.device)
    digests, losses = accelerator.gather(digest[None]), accelerator.gather(loss)
    report = {"weights_sha256": [bytes(d.tolist()).hex() for d in digests], "first_local_loss": losses.tolist()}
    if len(set(report["weights_sha256"])) > 1:
        raise RuntimeError(
            f"stage {stage!r}: the {accelerator.num_processes} processes ended with different weights: {report}"
        )
    return report


# --- the stage loop --------------------------------------------------------------------------------
def run_stage(stage: str, index: int, args, accelerator, tokenizer, start_dir: Optional[str], data) -> str:
    stage_dir = os.path.join(args.output_dir, f"{index}_{stage}")
    final_dir, ckpt_dir = os.path.join(stage_dir, "final"), os.path.join(stage_dir, "checkpoint")
    if os.path.exists(os.path.join(final_dir, "config.json")):
        accelerator.print(f"[{stage}] done already: {final_dir}")
        return final_dir
    steps = getattr(args, f"{stage}_steps")
    accelerator.free_memory()  # forget the previous stage's model and optimizer (they would be saved too)
    torch.manual_seed(args.seed)
    if start_dir is None:
        model = CRSMForCausalLM(
            CRSMConfig(
                vocab_size=len(tokenizer),
                hidden_size=args.hidden_size,
                num_hidden_layers=args.num_hidden_layers,
                state_size=args.state_size,
                aggregator=args.aggregator,
                delta_damping=args.delta_damping,
                delta_scale=args.delta_scale,
                use_mambapy=args.use_mambapy,
                pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
    else:
        model = CRSMForCausalLM.from_pretrained(start_dir, use_mambapy=args.use_mambapy)
    model.to(accelerator.device).train()
    params = trainable(model, stage)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    lr = args.joint_learning_rate if stage == "joint" else args.learning_rate
    optimizer = accelerator.prepare(torch.optim.AdamW(params, lr=lr, weight_decay=args.weight_decay))
    # The heads are called outside `forward`, which DDP would not see, so the model is registered
    # without a DDP wrapper (`evaluation_mode=True`: it still goes into the saved state, as
    # safetensors) and gradients are averaged across processes by hand below.
    model = accelerator.prepare_model(model, evaluation_mode=True)
    start, history = 0, []
    if os.path.exists(os.path.join(ckpt_dir, "step.json")):
        accelerator.load_state(ckpt_dir)
        saved = json.load(open(os.path.join(ckpt_dir, "step.json")))
        start, history = saved["step"], saved["history"]
        accelerator.print(f"[{stage}] resuming at step {start}")
    loss_fn = STAGE_LOSS[stage]
    progress = tqdm(range(start, steps), desc=f"stage {index} ({stage})", disable=not accelerator.is_main_process)
    first_local_loss = None
    for step in progress:
        rng = rng_for(args, accelerator, stage, step)
        loss = loss_fn(
            model, args, tokenizer, data["pool" if stage in ("value", "joint") else "stream"], rng, accelerator.device
        )
        loss.backward()
        if first_local_loss is None:
            first_local_loss = loss.item()
        average_gradients(accelerator, params)
        torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
        history.append(loss_value)
        if (step + 1) % args.logging_steps == 0:
            progress.set_postfix(loss=f"{np.mean(history[-args.logging_steps :]):.4f}")
        if (step + 1) % args.save_steps == 0 and step + 1 < steps:
            save_checkpoint(accelerator, ckpt_dir, step + 1, history)
    accelerator.wait_for_everyone()
    processes = check_processes_agree(accelerator, model, stage, first_local_loss)
    if accelerator.is_main_process:
        tmp = final_dir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        # The parallel scan is a training-time choice of this run; a saved model with it on would
        # refuse to load where mambapy is not installed (and inference never uses it).
        model.config.use_mambapy = False
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(os.path.join(tmp, "loss_history.json"), history, indent=2)
        atomic_write_json(os.path.join(tmp, "processes.json"), processes, indent=2)
        plot_losses(history, os.path.join(tmp, "loss.png"), f"stage {index}: {stage}")
        replace_dir(tmp, final_dir)
    accelerator.wait_for_everyone()
    return final_dir


def save_checkpoint(accelerator, ckpt_dir: str, step: int, history) -> None:
    tmp = ckpt_dir + ".tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(tmp, safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(os.path.join(tmp, "step.json"), {"step": step, "history": history}, indent=2)
        replace_dir(tmp, ckpt_dir)
    accelerator.wait_for_everyone()


def plot_losses(history, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(history) + 1), history, lw=0.8)
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path[:-4] + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def parse_args(argv=None) -> CRSMTrainingArguments:
    parser = HfArgumentParser(CRSMTrainingArguments)
    known, _ = parser.parse_known_args(args=argv)
    if known.preset in PRESETS:
        # set_defaults, not assignment after parsing: a flag given explicitly still wins.
        parser.set_defaults(**PRESETS[known.preset])
        if known.preset == "cpu-small" and is_mambapy_available():
            parser.set_defaults(use_mambapy=True)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def main(argv=None):
    args = parse_args(argv)
    accelerator = Accelerator(cpu=args.use_cpu)
    os.makedirs(args.output_dir, exist_ok=True)
    tok_dir = os.path.join(args.output_dir, "tokenizer")
    if args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    else:
        if accelerator.is_main_process and not os.path.exists(os.path.join(tok_dir, "tokenizer.json")):
            tmp = tok_dir + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tokenizer(vocab_size=args.vocab_size).save_pretrained(tmp)
            replace_dir(tmp, tok_dir)
        accelerator.wait_for_everyone()
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    data = {"stream": lm_stream(args, tokenizer), "pool": arithmetic_pool(args, seed=args.seed + 2)}
    previous = args.model_name_or_path
    for stage in args.stage_list:
        index = STAGES.index(stage) + 1
        if previous is None and stage != "lm":
            earlier = os.path.join(args.output_dir, f"{index - 1}_{STAGES[index - 2]}", "final")
            if not os.path.exists(os.path.join(earlier, "config.json")):
                raise ValueError(
                    f"stage {stage!r} starts from {earlier}, which does not exist: run the earlier stages first"
                )
            previous = earlier
        previous = run_stage(stage, index, args, accelerator, tokenizer, previous, data)
    accelerator.print(f"final model: {previous}")
    return previous


if __name__ == "__main__":
    main()
    end_distributed()
