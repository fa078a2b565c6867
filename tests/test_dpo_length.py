"""LengthBalancedDPOTrainer: the segment-weighted loss against a hand computation; the sampler's balance."""

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel

from hf_reason.data.text import build_tokenizer
from hf_reason.trainers import LengthBalancedDPOConfig, LengthBalancedDPOTrainer, LengthBalancedSampler
from hf_reason.trainers.dpo import segment_token_weights


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=384, extra_special_tokens=("<think>", "</think>"))


def tiny_gpt2(tokenizer, seed):
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=128,
        n_embd=32,
        n_layer=1,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return GPT2LMHeadModel(config)


def config(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        max_steps=2,
        learning_rate=1e-3,
        beta=0.5,
        think_alpha=0.25,
        answer_alpha=0.5,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        bf16=False,
        seed=0,
        gradient_checkpointing=False,
    )
    kwargs.update(overrides)
    return LengthBalancedDPOConfig(**kwargs)


PAIR = {
    "prompt": "Q: 2 + 3 = ?\nA:",
    "chosen": "<think> 2 + 3 = 5, checked twice</think> #### 5",
    "rejected": "<think> 2 + 3</think> #### 6 or so",
}


def test_loss_matches_a_hand_computation(tokenizer, tmp_path):
    policy, reference = tiny_gpt2(tokenizer, 0), tiny_gpt2(tokenizer, 1)
    trainer = LengthBalancedDPOTrainer(
        model=policy,
        ref_model=reference,
        args=config(tmp_path),
        train_dataset=Dataset.from_list([PAIR]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    loss = trainer.compute_loss(trainer.model, batch)

    # by hand: segment each completion, weight tokens beyond the pair's shared segment lengths
    prompt = tokenizer(PAIR["prompt"])["input_ids"]
    think, end = tokenizer.convert_tokens_to_ids(["<think>", "</think>"])

    def split(completion):
        ids = tokenizer(completion)["input_ids"] + [tokenizer.eos_token_id]  # TRL appends EOS to completions
        close = ids.index(end)
        return ids, close + 1, len(ids) - close - 1  # ids, thought length (tags included), answer length

    (c_ids, c_t, c_a), (r_ids, r_t, r_a) = split(PAIR["chosen"]), split(PAIR["rejected"])
    assert c_ids[0] == think and r_ids[0] == think and c_t > r_t and r_a > c_a
    shared_t, shared_a = min(c_t, r_t), min(c_a, r_a)

    def weights(n_thought, n_answer):
        w_t = [1.0 if k <= shared_t else 0.25 for k in range(1, n_thought + 1)]
        w_a = [1.0 if k <= shared_a else 0.5 for k in range(1, n_answer + 1)]
        return torch.tensor(w_t + w_a)

    def logp(model, completion_ids, w):
        ids = torch.tensor([prompt + completion_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt) - 1 : -1]
        token_logps = torch.log_softmax(logits.double(), -1).gather(-1, torch.tensor(completion_ids)[:, None])[:, 0]
        return (token_logps * w.double()).sum()

    w_c, w_r = weights(c_t, c_a), weights(r_t, r_a)
    margin = (logp(policy, c_ids, w_c) - logp(reference, c_ids, w_c)) - (
        logp(policy, r_ids, w_r) - logp(reference, r_ids, w_r)
    )
    expected = -F.logsigmoid(0.5 * margin)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
    # the same with reference log-probs precomputed (weighted the same way) before training
    precomputed = LengthBalancedDPOTrainer(
        model=policy,
        ref_model=reference,
        args=config(tmp_path / "pre", precompute_ref_log_probs=True),
        train_dataset=Dataset.from_list([PAIR]),
        processing_class=tokenizer,
    )
    batch = precomputed.data_collator([precomputed.train_dataset[0]])
    assert "ref_chosen_logps" in batch
    assert precomputed.compute_loss(precomputed.model, batch).item() == pytest.approx(
        expected.item(), rel=1e-4, abs=1e-6
    )
    # and with both alphas at 1 it is plain DPO: weights are all ones
    ones = segment_token_weights(batch["input_ids"], batch["completion_mask"], think, end, 1.0, 1.0)
    assert torch.equal(ones, torch.ones_like(ones))


def test_config_validates_its_fields(tmp_path):
    with pytest.raises(ValueError, match="think_alpha"):
        config(tmp_path, think_alpha=1.5)
    with pytest.raises(ValueError, match="ld_alpha"):
        config(tmp_path, ld_alpha=0.5)


def test_tags_must_be_single_tokens(tmp_path):
    plain = build_tokenizer(vocab_size=300)
    with pytest.raises(ValueError, match="think_start_token"):
        LengthBalancedDPOTrainer(
            model=tiny_gpt2(plain, 0),
            ref_model=tiny_gpt2(plain, 0),
            args=config(tmp_path),
            train_dataset=Dataset.from_list([PAIR]),
            processing_class=plain,
        ).compute_loss(None, {"input_ids": torch.zeros(2, 3, dtype=torch.long), "completion_mask": torch.ones(2, 3)})


def test_sampler_balances_every_batch():
    rng = random.Random(0)
    # chosen longer in 80% of pairs: a length-biased preference set
    diffs = [rng.randint(1, 40) if rng.random() < 0.8 else -rng.randint(1, 40) for _ in range(403)]
    batch = 8
    order = list(LengthBalancedSampler(diffs, batch_size=batch, seed=3))
    assert len(order) == len(diffs) and all(0 <= i < len(diffs) for i in order)
    means = [
        sum(diffs[i] for i in order[s : s + batch]) / len(order[s : s + batch]) for s in range(0, len(order), batch)
    ]
    assert max(abs(m) for m in means[:-1]) <= max(map(abs, diffs)) / batch
    assert abs(sum(means) / len(means)) < 1.0  # vs ~ +12 tokens per pair for plain shuffling
    plain = sum(diffs) / len(diffs)
    assert plain > 10
    # deterministic for a seed and epoch, different across epochs
    again = LengthBalancedSampler(diffs, batch_size=batch, seed=3)
    assert list(again) == order
    again.set_epoch(1)
    assert list(again) != order
    with pytest.raises(ValueError, match="both directions"):
        LengthBalancedSampler([3, 1, 2], batch_size=2)


@pytest.mark.slow
def test_trains_with_balanced_batches(tokenizer, tmp_path):
    pairs = [PAIR, {**PAIR, "chosen": PAIR["rejected"], "rejected": PAIR["chosen"]}] * 4
    policy = tiny_gpt2(tokenizer, 0)
    trainer = LengthBalancedDPOTrainer(
        model=policy,
        ref_model=copy.deepcopy(policy),
        args=config(tmp_path, logging_steps=1),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
    )
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.batch_sampler.sampler, LengthBalancedSampler)
    for batch in loader:  # every batch of 2 pairs holds one of each direction: length differences cancel
        chosen, rejected = batch["completion_mask"].sum(1).chunk(2)
        assert (chosen - rejected).sum().item() == 0
    trainer.train()
    assert [h for h in trainer.state.log_history if "loss" in h]


def test_length_biased_preferences_have_the_bias_and_correct_chosen():
    from hf_reason.data import generate_length_biased_preferences, is_correct

    biased = generate_length_biased_preferences(400, bias=0.8, seed=0)
    longer = [len(c) > len(r) for c, r in zip(biased["chosen"], biased["rejected"])]
    assert longer == biased["chosen_longer"]
    assert 0.75 < sum(longer) / len(longer) < 0.85
    assert all(
        is_correct(c, a) and not is_correct(r, a)
        for c, r, a in zip(biased["chosen"], biased["rejected"], biased["answer"])
    )
    heldout = generate_length_biased_preferences(400, bias=0.5, seed=1)
    assert 0.43 < sum(heldout["chosen_longer"]) / 400 < 0.57
    with pytest.raises(ValueError, match="bias"):
        generate_length_biased_preferences(3, bias=1.5)


def test_best_of_n_pairs_pick_the_hard_negative_and_filter_low_confidence():
    from hf_reason.data import build_preference_pairs, find_chat_template_tokens

    samples = ["#### 5", "3 + 2 = 5 #### 5", "3 + 2 = 6 #### 6", "no idea"]
    pair = build_preference_pairs("Q", samples, [1.0, 1.0, 0.0, 0.0])
    assert pair["chosen"] == "#### 5" and pair["margin"] == 1.0
    pair = build_preference_pairs("Q", samples[1:], [1.0, 0.0, 0.0])
    assert pair["rejected"] == "3 + 2 = 6 #### 6"  # the near miss, not the unrelated sample
    assert build_preference_pairs("Q", samples, [0.0] * 4) is None  # nothing to contrast
    answers = ["5", "7", "8", "9"]
    assert build_preference_pairs("Q", samples, [1, 0, 0, 0], answers=answers, min_confidence=0.5) is None
    assert find_chat_template_tokens("Q: 1 + 1 = ?\nA: #### 2") == []
    assert find_chat_template_tokens("<|im_start|>assistant\n#### 2") == ["<|im_start|>"]


class _TRLWithoutFusedLogProbs(LengthBalancedDPOTrainer):
    """As if TRL computed DPO log-probs from the logits itself, outside the fused_lm_head forward."""

    def _compute_loss(self, model, inputs, return_outputs):
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        logps = torch.log_softmax(logits[:, :-1], -1).gather(-1, inputs["input_ids"][:, 1:, None])[..., 0]
        chosen, rejected = (logps * inputs["completion_mask"][:, 1:]).sum(1).chunk(2)
        return -F.logsigmoid(chosen - rejected).mean()


class _TRLWithOtherRows(LengthBalancedDPOTrainer):
    """As if TRL ran the loss forward on other rows than the collated batch (here: one pair of two)."""

    def _compute_loss(self, model, inputs, return_outputs):
        half = inputs["input_ids"].size(0) // 2
        return super()._compute_loss(model, {k: v[[0, half]] for k, v in inputs.items()}, return_outputs)


@pytest.mark.parametrize(
    "trainer_cls, message",
    [
        (_TRLWithoutFusedLogProbs, "weighted 0 log-prob forwards where the DPO loss runs 2"),
        (_TRLWithOtherRows, r"expects per-token log-probs of shape \(4, "),
    ],
)
def test_length_weights_that_cannot_be_applied_raise_instead_of_plain_dpo(tokenizer, tmp_path, trainer_cls, message):
    trainer = trainer_cls(
        model=tiny_gpt2(tokenizer, 0),
        ref_model=tiny_gpt2(tokenizer, 1),
        args=config(tmp_path),
        train_dataset=Dataset.from_list([PAIR, PAIR]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    with pytest.raises(RuntimeError, match=message):
        trainer.compute_loss(trainer.model, batch)


def _tiny_4bit_llama(tokenizer, tmp_path):
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    if not (tmp_path / "base" / "config.json").exists():
        torch.manual_seed(0)
        LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=1,
                num_attention_heads=2,
                max_position_embeddings=128,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        ).save_pretrained(tmp_path / "base")
    return LlamaForCausalLM.from_pretrained(
        tmp_path / "base",
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32),
    )


def _repacks_for_cpu_inference(model) -> bool:
    # bitsandbytes' own per-layer switch: set on CPUs with AVX512-BF16 (bitsandbytes >= 0.48); without it no
    # layout change happens and there is nothing to refuse
    return any(getattr(m, "support_avx512bf16_for_cpu", False) for m in model.modules())


@pytest.mark.slow
def test_qlora_dpo_keeps_learning_across_evaluations_and_refuses_a_repacked_model(tokenizer, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is the optional `quantization` extra (and in `dev`)")
    from peft import LoraConfig

    from hf_reason.trainers.dpo import check_4bit_weights_trainable

    model = _tiny_4bit_llama(tokenizer, tmp_path)
    repacks = _repacks_for_cpu_inference(model)
    check_4bit_weights_trainable(model)  # fresh from disk: trainable layout
    other = {
        "prompt": "Q: 1 + 1 = ?\nA:",
        "chosen": "<think> 1</think> #### 2",
        "rejected": "<think> so three</think> #### 3",
    }
    pairs = Dataset.from_list([PAIR, other])
    # an evaluation after every step: under no_grad in eval mode, which is where bitsandbytes repacks on such CPUs
    trainer = LengthBalancedDPOTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=pairs,
        eval_dataset=pairs,
        args=config(
            tmp_path / "run",
            max_steps=3,
            learning_rate=1e-2,
            eval_strategy="steps",
            eval_steps=1,
            logging_steps=1,
            per_device_eval_batch_size=2,
            length_balanced_batches=False,
            use_cpu=True,
        ),
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    grad_norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    # stock DPOTrainer here (bitsandbytes 0.50.2, AVX512-BF16): [0.17, 0.0, 0.0], no gradient after the first evaluation
    assert len(grad_norms) == 3 and all(g > 0 for g in grad_norms), grad_norms
    assert sum(1 for h in trainer.state.log_history if "eval_loss" in h) == 3
    check_4bit_weights_trainable(trainer.model)

    evaluated = _tiny_4bit_llama(tokenizer, tmp_path)
    evaluated.eval()
    with torch.no_grad():
        evaluated(input_ids=torch.tensor([[5, 6, 7]]))
    if not repacks:
        pytest.skip("bitsandbytes does not repack 4-bit weights on this CPU (no AVX512-BF16): nothing to refuse")
    with pytest.raises(ValueError, match="reload the model"):
        check_4bit_weights_trainable(evaluated)
    refusing = LengthBalancedDPOTrainer(
        model=evaluated,
        processing_class=tokenizer,
        train_dataset=pairs,
        args=config(tmp_path / "refused", use_cpu=True),
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    with pytest.raises(ValueError, match="repacked for CPU inference"):
        refusing.train()
