"""ReasoningGRPOTrainer: one prompt prefill per group, same completions as stock TRL."""

import pytest
import torch
from conftest import REPO_ROOT, accelerate_launch
from grpo_testing import (
    grpo_trainer,
    left_padded_groups,
    text_length_reward,
    tiny_crsm,
    tiny_gpt2,
    tiny_meta_attention,
)
from transformers import GenerationConfig
from trl import GRPOConfig, GRPOTrainer

from hf_reason.data.arithmetic import generate_arithmetic
from hf_reason.data.text import build_tokenizer
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer
from hf_reason.trainers.grpo import can_share_prefill, shared_prefill_generate
from hf_reason.trainers.rewards import ArithmeticAnswerReward, FormatReward


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=384)


@pytest.mark.parametrize("family", ["gpt2", "meta_attention"])
@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "seeded_sampling"])
def test_shared_prefill_generates_exactly_what_generate_does(tokenizer, do_sample, family):
    model = {"gpt2": tiny_gpt2, "meta_attention": tiny_meta_attention}[family](tokenizer)
    _, input_ids, mask = left_padded_groups(tokenizer, group_size=4)
    gen = GenerationConfig(
        max_new_tokens=12,
        do_sample=do_sample,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    assert can_share_prefill(model, gen)
    torch.manual_seed(123)
    stock = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=gen)
    torch.manual_seed(123)
    ours = shared_prefill_generate(model, input_ids, mask, gen)
    assert torch.equal(ours, stock)
    if do_sample:  # a group's completions differ from each other, so the seeded RNG stream really matters
        assert len({tuple(r) for r in ours[:4, input_ids.size(1) :].tolist()}) > 1


def test_dropout_static_cache_or_recurrent_state_falls_back(tokenizer):
    model = tiny_gpt2(tokenizer)
    gen = GenerationConfig(max_new_tokens=2)
    assert not can_share_prefill(
        tiny_crsm(tokenizer), gen
    )  # its recurrent cache is not a DynamicCache: stock generation runs
    assert not can_share_prefill(model, GenerationConfig(max_new_tokens=2, cache_implementation="static"))
    model.train()
    model.transformer.drop.p = 0.1
    assert not can_share_prefill(model, gen)


def _trainer(cls, config_cls, tokenizer, tmp_path):
    rewards = [ArithmeticAnswerReward(), FormatReward()]
    return grpo_trainer(
        cls, config_cls, tiny_gpt2(tokenizer), tokenizer, tmp_path, reward_funcs=rewards, gradient_checkpointing=False
    )


def test_trainer_generation_matches_stock_grpo(tokenizer, tmp_path):
    ours = _trainer(ReasoningGRPOTrainer, ReasoningGRPOConfig, tokenizer, tmp_path / "ours")
    stock = _trainer(GRPOTrainer, GRPOConfig, tokenizer, tmp_path / "stock")
    ours.model.train(), stock.model.train()  # as during a training step (dropout is 0 in this model)
    prompt_ids, _, _ = left_padded_groups(tokenizer, group_size=4)
    torch.manual_seed(5)
    expected, _ = stock._generate_single_turn(prompt_ids, None, {}, 4)
    torch.manual_seed(5)
    got, _ = ours._generate_single_turn(prompt_ids, None, {}, 4)
    assert got == expected
    assert ours._metrics["train"]["generation/prefill_rows_saved"] == [12 - 3]


@pytest.mark.slow
def test_trains_with_a_lora_adapter(tokenizer, tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], task_type="CAUSAL_LM", fan_in_fan_out=True)
    trainer = grpo_trainer(
        ReasoningGRPOTrainer,
        ReasoningGRPOConfig,
        tiny_gpt2(tokenizer),
        tokenizer,
        tmp_path,
        peft_config=lora,
        max_steps=2,
        learning_rate=1e-2,
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)  # the adapter learned
    logged = [h for h in trainer.state.log_history if "generation/prefill_rows_saved" in h]
    assert logged and logged[0]["generation/prefill_rows_saved"] == 6  # 8 rows, 2 distinct prompts per step
    assert logged[0]["loss_forward/prompt_rows_saved"] == 6  # and in the loss forward, under checkpointing


@pytest.mark.slow
def test_two_process_accelerate_run_matches_one_process(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    script = str(REPO_ROOT / "tests" / "scripts" / "grpo_ddp_check.py")
    two, one = tmp_path / "two", tmp_path / "one"
    result = accelerate_launch(script, str(two))
    assert result.returncode == 0, result.stderr[-4000:]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, script, str(one)], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]

    ranks = [json.loads((two / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["initial_weights_sha256"] == ranks[1]["initial_weights_sha256"]  # the same seeded init
    assert ranks[0]["weights_sha256"] != ranks[0]["initial_weights_sha256"]  # the two steps trained
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]  # DDP kept the replicas in sync
    assert ranks[0]["prompts"] != ranks[1]["prompts"]  # each process generated for its own share
    # each process holds whole groups here (4 rows = 1 prompt x 4), so 3 of 4 prefills are saved per step
    assert ranks[0]["prefill_rows_saved"] == [3.0, 3.0]

    # The loss forward: the same global batch (2 prompts x 4 scripted completions) on 2 processes and on 1
    for family in ("meta_attention", "crsm"):
        for rank in (0, 1):
            shared = json.loads((two / f"shared_{family}_rank{rank}.json").read_text())
            # each rank ran its prompt once
            assert shared[f"{family}_ours_gc"] == shared[f"{family}_ours_no_gc"] == [3.0], family
        assert json.loads((one / f"shared_{family}_rank0.json").read_text())[f"{family}_ours_gc"] == [6.0]
        for tag in ("gc", "no_gc"):
            two_ours = load_file(two / f"grads_{family}_ours_{tag}.safetensors")
            for name, expected in [
                ("1-process ours", load_file(one / f"grads_{family}_ours_{tag}.safetensors")),
                ("2-process stock", load_file(two / f"grads_{family}_stock_{tag}.safetensors")),
            ]:
                assert two_ours.keys() == expected.keys()
                assert any(float(g.abs().max()) > 0 for g in expected.values())
                for key, grad in two_ours.items():
                    scale = expected[key].abs().max().clamp(min=1e-12)
                    error = float((grad - expected[key]).abs().max() / scale)
                    assert error <= 1e-5, (family, tag, name, key, error)


@pytest.mark.slow
def test_train_grpo_example_warm_starts_trains_saves_and_resumes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def run(max_steps, *extra):
        # fmt: off
        command = [
            sys.executable, "examples/train_grpo.py", "--output_dir", str(tmp_path), "--max_steps", str(max_steps),
            "--num_train_problems", "16", "--hidden_size", "32", "--num_layers", "1", "--vocab_size", "320",
            "--max_completion_length", "6", "--sft_steps", "2", "--disable_tqdm", "true", "--save_strategy", "steps",
            "--save_steps", "2", "--use_peft", "true", "--lora_r", "2", *extra,
        ]
        # fmt: on
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout

    assert "Resuming from" not in run(2, "--cosine_curriculum", "true")
    assert (tmp_path / "adapter_model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()
    assert (tmp_path / "sft" / "model.safetensors").is_file() and (tmp_path / "checkpoint-2").is_dir()
    sft_written = (tmp_path / "sft" / "model.safetensors").stat().st_mtime_ns
    # `last` picks checkpoint-2 up and skips the warm start, whose weights the checkpoint replaces anyway
    assert f"Resuming from {tmp_path / 'checkpoint-2'}" in run(4, "--resume_from_checkpoint", "last")
    assert (tmp_path / "checkpoint-4").is_dir()
    assert (tmp_path / "sft" / "model.safetensors").stat().st_mtime_ns == sft_written


@pytest.mark.slow
def test_qlora_grpo_keeps_learning_across_evaluations(tokenizer, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is the optional `quantization` extra (and in `dev`)")
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    from hf_reason.trainers.dpo import check_4bit_weights_trainable

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
            bos_token_id=tokenizer.bos_token_id,
        )
    ).save_pretrained(tmp_path / "base")
    model = LlamaForCausalLM.from_pretrained(
        tmp_path / "base",
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32),
    )
    data = generate_arithmetic(8, seed=1).remove_columns(["completion"])
    # an evaluation (eval-mode, no-grad generation and scoring) after every step: where bitsandbytes would
    # repack the 4-bit weights into its CPU inference layout, which has no backward
    args = ReasoningGRPOConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        num_generations=4,
        max_completion_length=6,
        max_steps=3,
        learning_rate=1e-2,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=7,
        disable_tqdm=True,
        bf16=False,
        eval_strategy="steps",
        eval_steps=1,
        use_cpu=True,
    )
    trainer = ReasoningGRPOTrainer(
        model=model,
        reward_funcs=text_length_reward,
        args=args,
        train_dataset=data,
        eval_dataset=data.select(range(4)),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    grad_norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
    # stock GRPOTrainer here (bitsandbytes 0.50.2, AVX512-BF16 CPU): [0.0, 0.0, 0.0]
    assert len(grad_norms) == 3 and all(g > 0 for g in grad_norms[1:]), grad_norms
    check_4bit_weights_trainable(trainer.model)


def test_a_format_reward_on_special_think_tags_is_refused_and_plain_added_tags_reach_it(tmp_path):
    special = build_tokenizer(vocab_size=384, extra_special_tokens=("<think>", "</think>"))
    with pytest.raises(ValueError, match=r"reads the tags \['<think>', '</think>'\], which are special tokens"):
        grpo_trainer(
            ReasoningGRPOTrainer,
            ReasoningGRPOConfig,
            tiny_gpt2(special),
            special,
            tmp_path,
            reward_funcs=FormatReward(),
        )
    plain = build_tokenizer(vocab_size=384, extra_tokens=("<think>", "</think>"))
    trainer = grpo_trainer(
        ReasoningGRPOTrainer, ReasoningGRPOConfig, tiny_gpt2(plain), plain, tmp_path, reward_funcs=FormatReward()
    )
    # what GRPO hands the reward: the completion decoded with skip_special_tokens=True keeps the tags
    ids = plain(" <think> 2 + 2 = 4</think> #### 4" + plain.eos_token)["input_ids"]
    text = trainer.processing_class.batch_decode([ids], skip_special_tokens=True)[0]
    assert FormatReward()(prompts=["Q"], completions=[text]) == [1.0]
