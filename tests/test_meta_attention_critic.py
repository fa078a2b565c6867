import inspect

import pytest
import torch
from transformers import DataCollatorWithPadding

from hf_reason import MetaAttentionConfig, MetaAttentionForCausalLM, MetaAttentionForSequenceScoring
from hf_reason.data.text import build_tokenizer
from hf_reason.evaluation.attention_plots import attention_matrix, save_attention_heatmap, section_token_positions
from hf_reason.evaluation.reports import ReportEvaluator
from hf_reason.evaluation.self_critic import SelfCriticReward, critic_examples, critic_rows


REPORT = "Plan: add the numbers.\nStep 1: 2 + 3 = 5.\nMonitor: the sum is checked.\nAnswer: 5\n"
BAD = "zzz qqq\nAnswer: 7\n"


@pytest.fixture(scope="module")
def tokenizer():
    texts = [REPORT, BAD, "What is 2 + 3?", "Plan Step Monitor Diagnosis Reflection Answer"] * 4
    tok = build_tokenizer(vocab_size=300, texts=texts)
    tok.padding_side = "left"  # as TRL pads prompts
    return tok


def tiny_config(tokenizer, **overrides):
    kwargs = dict(
        vocab_size=len(tokenizer),
        n_positions=96,
        n_embd=32,
        n_layer=2,
        n_head=2,
        meta_top_k=2,
        meta_hidden_size=16,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    kwargs.update(overrides)
    return MetaAttentionConfig(**kwargs)


def test_reward_has_trl_signature_and_returns_one_score_per_completion(tokenizer):
    torch.manual_seed(0)
    critic = MetaAttentionForSequenceScoring(tiny_config(tokenizer))
    reward = SelfCriticReward(critic, tokenizer, batch_size=2)
    assert reward.__name__ == "self_critic"
    params = list(inspect.signature(reward).parameters.values())
    assert [p.name for p in params[:2]] == ["prompts", "completions"] and params[
        -1
    ].kind is inspect.Parameter.VAR_KEYWORD
    prompts = ["What is 2 + 3?\n"] * 3
    completions = [REPORT, BAD, REPORT]
    scores = reward(prompts=prompts, completions=completions, task_id=["a", "b", "c"])
    assert len(scores) == 3 and all(isinstance(s, float) and 0.0 < s < 1.0 for s in scores)
    assert scores[0] == pytest.approx(scores[2], abs=1e-6)  # batching and padding do not change a score
    single = reward(prompts=prompts[:1], completions=completions[:1])
    assert single[0] == pytest.approx(scores[0], abs=1e-5)
    # conversational samples
    conv = reward(
        prompts=[[{"role": "user", "content": "What is 2 + 3?"}]],
        completions=[[{"role": "assistant", "content": REPORT}]],
    )
    assert len(conv) == 1
    with pytest.raises(ValueError, match="completions"):
        reward(prompts=prompts[:2], completions=completions)
    with pytest.raises(ValueError, match="batch_size"):
        SelfCriticReward(critic, tokenizer, batch_size=0)


@pytest.mark.parametrize("critic_loss", ["bce", "mse"])
def test_training_on_verdicts_reduces_the_loss_and_separates_episodes(tokenizer, critic_loss):
    torch.manual_seed(0)
    critic = MetaAttentionForSequenceScoring(tiny_config(tokenizer, critic_loss=critic_loss)).train()
    prompts = ["What is 2 + 3?\n"] * 4
    completions = [REPORT, BAD, REPORT.replace("5", "5 "), BAD.replace("7", "9")]
    verdicts = [1, 0, 1, 0] if critic_loss == "bce" else [0.9, 0.1, 0.8, 0.2]
    rows = critic_examples(prompts, completions, verdicts, tokenizer)
    batch = DataCollatorWithPadding(tokenizer)(rows)
    assert batch["labels"].dtype == torch.float32
    optimizer = torch.optim.AdamW(critic.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = critic(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    scores = SelfCriticReward(critic, tokenizer)(prompts, completions)
    assert min(scores[0], scores[2]) > max(scores[1], scores[3])
    with pytest.raises(ValueError, match="verdict"):
        critic_examples(prompts[:1], completions[:1], [2.0], tokenizer)


ADD_TASK = {
    "id": "math-add",
    "category": "math",
    "prompt": "What is 2 + 3?\n",
    "validator": {"kind": "numeric", "config": {"answer": 5}},
    "introspection": {"focus_terms": ["2", "3"], "hints": []},
}


def test_critic_rows_come_from_evaluator_verdicts_and_train_the_critic(tokenizer):
    evaluator = ReportEvaluator([ADD_TASK])
    completions = [REPORT, BAD, REPORT.replace("= 5.", "= 5 ."), BAD.replace("7", "9")]
    episodes = [{"task_id": "math-add", "completion": c} for c in completions]
    rows = critic_rows(episodes, evaluator)
    assert [r["label"] for r in rows] == [1.0, 0.0, 1.0, 0.0]  # the numeric validator's verdicts
    assert rows[0]["prompt"] == ADD_TASK["prompt"] and rows[0]["text"] == ADD_TASK["prompt"] + REPORT
    overall = critic_rows(episodes, evaluator, label="overall")
    assert all(0.0 <= r["label"] <= 1.0 for r in overall) and overall[0]["label"] > overall[1]["label"]
    scored = [evaluator.score(c, "math-add") for c in completions]
    assert critic_rows(episodes, evaluator, results=scored, label="overall") == overall  # no second scoring
    with pytest.raises(ValueError, match="no 'validator' score"):
        critic_rows([{"task_id": "unknown", "completion": REPORT}], evaluator)
    with pytest.raises(ValueError, match="label"):
        critic_rows(episodes, evaluator, label="vibes")

    # the rows train the critic toward the evaluator's verdicts
    torch.manual_seed(0)
    critic = MetaAttentionForSequenceScoring(tiny_config(tokenizer, critic_loss="bce")).train()
    examples = critic_examples(
        [r["prompt"] for r in rows], [r["completion"] for r in rows], [r["label"] for r in rows], tokenizer
    )
    batch = DataCollatorWithPadding(tokenizer)(examples)
    optimizer = torch.optim.AdamW(critic.parameters(), lr=3e-3)
    for _ in range(15):
        loss = critic(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores = SelfCriticReward(critic, tokenizer)([r["prompt"] for r in rows], [r["completion"] for r in rows])
    assert min(scores[0], scores[2]) > max(scores[1], scores[3])


def test_critic_starts_from_a_trained_causal_lm(tokenizer, tmp_path):
    torch.manual_seed(0)
    lm = MetaAttentionForCausalLM(tiny_config(tokenizer))
    lm.save_pretrained(tmp_path)
    critic = MetaAttentionForSequenceScoring.from_pretrained(tmp_path)
    torch.testing.assert_close(critic.transformer.h[1].mlp.c_fc.weight, lm.transformer.h[1].mlp.c_fc.weight)
    # left- and right-padded batches read the same last token
    ids = tokenizer([REPORT, BAD], return_tensors="pt", padding=True, add_special_tokens=False)
    left = critic(**ids).logits
    tokenizer.padding_side = "right"
    try:
        right_ids = tokenizer([REPORT, BAD], return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = "left"
    right = critic(**right_ids).logits
    torch.testing.assert_close(left, right, rtol=1e-5, atol=1e-5)


def test_heatmap_of_a_report_step_is_written_as_png(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = MetaAttentionForCausalLM(tiny_config(tokenizer)).eval()
    text = "What is 2 + 3?\n" + REPORT
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    rows = section_token_positions(enc["offset_mapping"], text, "Step 1")
    step_text = "".join(
        tokenizer.convert_tokens_to_string([t])
        for t in tokenizer.convert_ids_to_tokens(enc["input_ids"])[rows[0] : rows[-1] + 1]
    )
    assert "2 + 3 = 5" in step_text and "Monitor" not in step_text
    out = model(torch.tensor([enc["input_ids"]]), output_attentions=True)
    matrix = attention_matrix(out.attentions, rows, layer=1, head=0)
    torch.testing.assert_close(matrix, out.attentions[1][0, 0, rows])
    torch.testing.assert_close(attention_matrix(out.attentions).sum(-1), torch.ones(len(enc["input_ids"])))
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    path = save_attention_heatmap(
        out.attentions, tmp_path / "plots" / "step1.png", rows, tokens=tokens, title="Step 1"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["step1.png"]  # no temp file left
    with pytest.raises(ValueError, match="layer"):
        attention_matrix(out.attentions, layer=5)
    with pytest.raises(ValueError, match="Diagnosis"):
        section_token_positions(enc["offset_mapping"], text, "Diagnosis")
    with pytest.raises(ValueError, match="output_attentions"):
        attention_matrix((None, None))


@pytest.mark.slow
def test_stock_trl_grpo_trains_the_model_with_the_self_critic_reward(tokenizer, tmp_path):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    config = tiny_config(tokenizer, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    MetaAttentionForCausalLM(config).save_pretrained(tmp_path / "policy")  # TRL rebuilds the reference from it
    reward = SelfCriticReward(MetaAttentionForSequenceScoring(config), tokenizer)
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        max_steps=1,
        report_to=[],
        use_cpu=True,
        beta=0.04,
        gradient_checkpointing=True,
        save_strategy="no",
        logging_steps=1,
        learning_rate=1e-3,
    )
    trainer = GRPOTrainer(
        model=str(tmp_path / "policy"),
        reward_funcs=[reward],
        args=args,
        processing_class=tokenizer,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["What is 2 + 3?\n"] * 4}),
    )
    assert type(trainer.model) is MetaAttentionForCausalLM
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    logged = trainer.state.log_history[0]
    assert 0.0 < logged["rewards/self_critic/mean"] < 1.0 and logged["kl"] >= 0.0
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
