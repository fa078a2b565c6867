"""The GRPO log-probability forward with each prompt run once: equal to stock GRPO's, or stock with a logged reason."""

import copy
import logging

import pytest
import torch
from grpo_testing import TINY_MODELS, grpo_trainer, tiny_gpt2
from transformers import GPT2LMHeadModel, GPT2Model
from transformers.models.mamba.modeling_mamba import MambaMixer
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import add_fused_lm_head

from hf_reason.data.text import build_tokenizer
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer
from hf_reason.trainers.shared_prefix import group_prompt_rows, shared_prefix_logps


REL_TOL = 1e-5
# old-policy and reference log-probabilities computed (generation and step misaligned, a KL term), raw gradients
EXACTNESS_OPTIONS = dict(num_iterations=2, beta=0.04, max_grad_norm=0.0)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=384)


def assert_close_relative(got: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    """|got - expected| <= REL_TOL * max|expected| (relative to the tensor's scale, so exact zeros are fine)."""
    scale = expected.abs().max().clamp(min=1e-12)
    error = float((got - expected).abs().max() / scale)
    assert error <= REL_TOL, f"{name}: relative error {error:.3g} > {REL_TOL:g}"


def test_group_prompt_rows_handles_any_repeat_pattern():
    ids = torch.tensor([[0, 5, 6], [7, 8, 9], [0, 5, 6], [1, 1, 1], [0, 5, 6], [7, 8, 9]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 1]])
    first, inverse = group_prompt_rows(ids, mask)
    assert first.numel() == 3
    assert torch.equal(ids[first][inverse], ids)  # every row maps to a row holding its prompt
    assert sorted(first.tolist()) == [0, 1, 3]  # the first row of each prompt, singleton row 3 included
    # the same ids with a different mask are a different prompt (a real 0 token vs. padding)
    first, _ = group_prompt_rows(ids[:1].repeat(2, 1), torch.tensor([[0, 1, 1], [1, 1, 1]]))
    assert first.numel() == 2


def _rows(tokenizer, prompts, completions, width, completion_width):
    """Left-padded prompts followed by right-padded completions, one row per (prompt, completion)."""
    pad = tokenizer.pad_token_id
    ids, mask = [], []
    for p, c in zip(prompts, completions):
        ids.append([pad] * (width - len(p)) + p + c + [pad] * (completion_width - len(c)))
        mask.append([0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (completion_width - len(c)))
    return torch.tensor(ids), torch.tensor(mask)


def mixed_batch(tokenizer):
    """Three prompts of different lengths: one repeated three times, one twice, one alone; completions
    of different lengths (one empty after its first token), rows interleaved."""
    a, b, c = (tokenizer(t)["input_ids"] for t in ["Q: 3 + 4 * 2 = ?\nA:", "Q: 7 = ?\nA:", "Q: 12 * 3 - 5 = ?\nA:"])
    prompts = [a, b, a, c, a, b]
    completions = [[5, 6, 7, 8, 9], [11, 12], [13], [14, 15, 16], [17, 18, 19, 20, 21], [22, 23, 24, 25]]
    width = max(len(p) for p in prompts)
    return _rows(tokenizer, prompts, completions, width, 5)


def lora_config(model, **options):
    """LoRA on the attention projection (GPT-2 shapes) or the Mamba mixer's projections (CRSM, Mamba)."""
    from peft import LoraConfig

    if any(isinstance(module, MambaMixer) for module in model.modules()):
        return LoraConfig(r=4, lora_alpha=8, target_modules=["in_proj", "x_proj", "dt_proj"], **options)
    return LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True, **options)


def _fused(model, lora: bool, gradient_checkpointing: bool):
    add_fused_lm_head(model, temperature=0.7, outputs=("log_probs", "entropy"))
    if lora:
        from peft import get_peft_model

        torch.manual_seed(1)  # the same adapter weights for both forwards (random, so the adapter is not a no-op)
        model = get_peft_model(model, lora_config(model, init_lora_weights=False))
    if gradient_checkpointing:
        model.gradient_checkpointing_enable({"use_reentrant": False})
    return model.train()


@pytest.mark.parametrize("gradient_checkpointing", [False, True], ids=["no_gc", "gc"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", ["gpt2", "meta_attention", "crsm", "mamba"])
def test_shared_logps_entropies_and_gradients_equal_the_full_forward(tokenizer, family, lora, gradient_checkpointing):
    base = TINY_MODELS[family](tokenizer)
    input_ids, mask = mixed_batch(tokenizer)
    keep = 5
    weights = torch.randn(input_ids.size(0), keep, generator=torch.Generator().manual_seed(0))
    results = {}
    for name in ("full", "shared"):
        model = _fused(copy.deepcopy(base), lora, gradient_checkpointing)
        lm = model.get_base_model() if lora else model
        if name == "full":
            labels = input_ids.masked_fill(mask == 0, -100)
            labels[:, :-keep] = -100
            out = model(input_ids=input_ids, attention_mask=mask, labels=labels, fused_lm_head=True)
            logps, entropies = out.log_probs[:, -keep:], out.entropy[:, -keep:]
        else:
            logps, entropies = shared_prefix_logps(model, lm, input_ids, mask, keep, compute_entropy=True)
        ((logps + 0.1 * entropies) * weights).sum().backward()
        # no layer or mixer keeps a swapped-in forward (the fused LM head's on the model itself is TRL's)
        assert not [n for n, m in lm.base_model.named_modules() if "forward" in m.__dict__]
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}  # CRSM: heads unused
        results[name] = logps.detach(), entropies.detach(), grads
    (full_logps, full_entropies, full_grads), (logps, entropies, grads) = results["full"], results["shared"]
    assert torch.equal(logps == 0, mask[:, -keep:] == 0)  # padding scores 0, real tokens never do
    assert_close_relative(logps, full_logps, "log-probabilities")
    assert_close_relative(entropies, full_entropies, "entropies")
    assert full_grads.keys() == grads.keys() and (not lora or all("lora" in n for n in grads))
    for name, grad in grads.items():
        assert_close_relative(grad, full_grads[name], name)


def test_gradient_checkpointing_recomputes_the_layers_and_keeps_fewer_tensors(tokenizer):
    input_ids, mask = mixed_batch(tokenizer)
    saved, calls = {}, {}
    for checkpointed in (False, True):
        model = _fused(tiny_gpt2(tokenizer), lora=False, gradient_checkpointing=checkpointed)
        attention = model.transformer.h[0].attn
        forward, calls[checkpointed] = attention.forward, []

        def counted(*args, _forward=forward, _calls=calls[checkpointed], **kwargs):
            _calls.append(1)
            return _forward(*args, **kwargs)

        attention.forward = counted
        numel = [0]

        def pack(tensor, _numel=numel):
            _numel[0] += tensor.numel()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            logps, _ = shared_prefix_logps(model, model, input_ids, mask, 5)
        saved[checkpointed] = numel[0]
        logps.sum().backward()
    assert len(calls[False]) == 2  # the prompt forward and the completion forward
    assert len(calls[True]) == 4  # each recomputed once in the backward
    assert saved[True] < saved[False] / 4
    # the model's own checkpointing is back on afterwards
    assert model.transformer.gradient_checkpointing and model.transformer.h[0].gradient_checkpointing
    assert "forward" not in model.transformer.h[0].__dict__


class StepRecorder:
    """Records a trainer's loss inputs (old / reference log-probabilities), its loss and its gradients."""

    def __init__(self, trainer):
        self.inputs, self.losses, self.grads = [], [], []
        compute_loss = trainer._compute_loss

        def recorded(model, inputs):
            loss = compute_loss(model, inputs)
            self.inputs.append({k: v for k, v in inputs.items() if torch.is_tensor(v)})
            self.losses.append(loss.detach().clone())
            return loss

        trainer._compute_loss = recorded
        trainer.add_callback(self._Grads(self.grads))

    class _Grads(__import__("transformers").TrainerCallback):
        def __init__(self, grads):
            self.grads = grads

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            self.grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})


def run_both(tokenizer, tmp_path, model_factory, lora=False, **extra):
    """One training step of stock GRPOTrainer and of ReasoningGRPOTrainer on the same model, data and seed."""
    peft_config = lora_config(model_factory(tokenizer)) if lora else None
    base = tmp_path / "base"
    model_factory(tokenizer).save_pretrained(base)  # TRL builds the reference model from the path
    runs = {}
    for name, (cls, config_cls) in {
        "stock": (GRPOTrainer, GRPOConfig),
        "ours": (ReasoningGRPOTrainer, ReasoningGRPOConfig),
    }.items():
        model = str(base) if not lora else type(model_factory(tokenizer)).from_pretrained(base)
        trainer = grpo_trainer(
            cls, config_cls, model, tokenizer, tmp_path / name, peft_config=peft_config, **EXACTNESS_OPTIONS, **extra
        )
        recorder = StepRecorder(trainer)
        trainer.train()
        runs[name] = trainer, recorder
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("gradient_checkpointing", [False, True], ids=["no_gc", "gc"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", ["gpt2", "meta_attention", "crsm"])
def test_a_training_step_equals_stock_grpo(tokenizer, tmp_path, family, lora, gradient_checkpointing):
    runs = run_both(tokenizer, tmp_path, TINY_MODELS[family], lora=lora, gradient_checkpointing=gradient_checkpointing)
    (_, stock), (ours_trainer, ours) = runs["stock"], runs["ours"]
    # the same completions (shared generation is exact), so the same rows in the same order
    assert torch.equal(ours.inputs[0]["completion_ids"], stock.inputs[0]["completion_ids"])
    assert torch.equal(ours.inputs[0]["prompt_mask"], stock.inputs[0]["prompt_mask"])
    assert len(set(ours.inputs[0]["prompt_mask"].sum(1).tolist())) > 1  # prompts of different lengths, left-padded
    for key in ("old_per_token_logps", "ref_per_token_logps"):
        assert_close_relative(ours.inputs[0][key], stock.inputs[0][key], key)
    assert_close_relative(ours.losses[0], stock.losses[0], "loss")
    assert stock.grads[0].keys() == ours.grads[0].keys()
    assert any(float(g.abs().max()) > 0 for g in stock.grads[0].values())
    for name, grad in ours.grads[0].items():
        assert_close_relative(grad, stock.grads[0][name], name)
    # the shared forward ran: 8 rows of 2 prompts, 6 prompt copies not recomputed
    logged = [h for h in ours_trainer.state.log_history if "loss_forward/prompt_rows_saved" in h]
    assert logged and logged[0]["loss_forward/prompt_rows_saved"] == 6
    assert ours_trainer._prefix_fallbacks_logged == set()


class _PeekingGPT2Model(GPT2Model):
    """A backbone whose every position also reads the mean embedding of the whole input (later tokens included)."""

    def forward(self, input_ids=None, **kwargs):
        outputs = super().forward(input_ids=input_ids, **kwargs)
        outputs.last_hidden_state = outputs.last_hidden_state + 10 * self.wte(input_ids).mean(1, keepdim=True)
        return outputs


class PeekingGPT2LMHeadModel(GPT2LMHeadModel):
    def __init__(self, config):
        super().__init__(config)
        self.transformer = _PeekingGPT2Model(config)
        self.post_init()


def test_a_model_whose_prompt_sees_later_tokens_falls_back_after_the_one_time_check(tokenizer, tmp_path, caplog):
    model = tiny_gpt2(tokenizer)
    peeking = PeekingGPT2LMHeadModel(model.config)
    peeking.load_state_dict(model.state_dict())
    trainer = grpo_trainer(ReasoningGRPOTrainer, ReasoningGRPOConfig, peeking, tokenizer, tmp_path)
    trainer.model.train()
    input_ids, mask = mixed_batch(tokenizer)
    stock = GRPOTrainer._get_per_token_logps_and_entropies
    with caplog.at_level(logging.WARNING, logger="hf_reason.trainers.grpo_trainer"), torch.no_grad():
        for _ in range(2):
            logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, mask, 5)
        expected, _, _ = stock(trainer, trainer.model, input_ids, mask, 5)
    assert torch.equal(logps, expected)
    reasons = [r.getMessage() for r in caplog.records if "ReasoningGRPOTrainer" in r.getMessage()]
    assert len(reasons) == 1 and "prompt positions read later tokens" in reasons[0], reasons


def test_no_repeated_prompt_runs_stock_and_says_so_once(tokenizer, tmp_path, caplog):
    trainer = grpo_trainer(ReasoningGRPOTrainer, ReasoningGRPOConfig, tiny_gpt2(tokenizer), tokenizer, tmp_path)
    trainer.model.train()
    input_ids, mask = mixed_batch(tokenizer)
    distinct = torch.tensor([0, 1, 3])  # one row of each prompt
    with caplog.at_level(logging.WARNING, logger="hf_reason.trainers.grpo_trainer"), torch.no_grad():
        for _ in range(3):
            logps, _, _ = trainer._get_per_token_logps_and_entropies(
                trainer.model, input_ids[distinct], mask[distinct], 5
            )
        expected, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(
            trainer, trainer.model, input_ids[distinct], mask[distinct], 5
        )
        # a chunk with a repeated prompt shares; the chunk after it (batch_size 3) has none and runs stock
        mixed, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, input_ids, mask, 5, batch_size=3)
        full, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(trainer, trainer.model, input_ids, mask, 5)
    assert torch.equal(logps, expected)
    assert_close_relative(mixed, full, "chunked log-probabilities")
    reasons = [r.getMessage() for r in caplog.records if "ReasoningGRPOTrainer" in r.getMessage()]
    assert reasons == [
        "ReasoningGRPOTrainer: the log-probability forward runs every prompt copy (stock): "
        "no prompt repeated within a micro-batch."
    ]
