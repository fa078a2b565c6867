"""examples/train_crsm.py: all four stages run end to end, and an interrupted stage resumes exactly."""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, accelerate_launch

from hf_reason import CRSMForCausalLM


SCRIPT = REPO_ROOT / "examples" / "train_crsm.py"
TINY = [
    "--hidden_size",
    "32",
    "--num_hidden_layers",
    "1",
    "--state_size",
    "4",
    "--vocab_size",
    "300",
    "--batch_size",
    "2",
    "--seq_len",
    "24",
    "--max_new_tokens",
    "6",
    "--dynamics_len",
    "6",
    "--teacher_tokens",
    "3",
    "--save_steps",
    "2",
    "--logging_steps",
    "1",
]


def load_example():
    spec = importlib.util.spec_from_file_location("train_crsm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_four_stages_run_and_an_interrupted_stage_resumes_exactly(tmp_path):
    example = load_example()
    out = tmp_path / "run"
    steps = ["--lm_steps", "4", "--value_steps", "2", "--dynamics_steps", "2", "--joint_steps", "2"]
    final = example.main(["--output_dir", str(out), *TINY, *steps])
    assert final == str(out / "4_joint" / "final")
    for stage in ("1_lm", "2_value", "3_dynamics", "4_joint"):
        files = set(os.listdir(out / stage / "final"))
        assert {"model.safetensors", "config.json", "loss.png", "tokenizer.json"} <= files
        assert not any(f.endswith(".tmp") for f in os.listdir(out / stage))
    model = CRSMForCausalLM.from_pretrained(final)
    lm_final = CRSMForCausalLM.from_pretrained(out / "1_lm" / "final")
    # stage 2 trains only the value head and the aggregator; stage 4 also moves the state-delta module
    value_final = CRSMForCausalLM.from_pretrained(out / "2_value" / "final")
    assert torch.equal(
        value_final.backbone.layers[0].mixer.in_proj.weight, lm_final.backbone.layers[0].mixer.in_proj.weight
    )
    assert not torch.equal(value_final.value_head.mlp[0].weight, lm_final.value_head.mlp[0].weight)
    assert model.state_delta.state.weight.abs().sum() > 0
    history = json.loads((out / "1_lm" / "final" / "loss_history.json").read_text())

    # a run killed after step 2 of stage 1: its checkpoint is there, the final model is not
    shutil.rmtree(out / "1_lm" / "final")
    for later in ("2_value", "3_dynamics", "4_joint"):
        shutil.rmtree(out / later)
    example.main(["--output_dir", str(out), *TINY, *steps, "--stages", "lm"])
    resumed = json.loads((out / "1_lm" / "final" / "loss_history.json").read_text())
    assert len(resumed) == 4
    assert resumed == pytest.approx(history, rel=1e-5)
    again = CRSMForCausalLM.from_pretrained(out / "1_lm" / "final")
    for name, tensor in lm_final.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_stage4_value_rows_start_from_corrected_states_and_send_no_gradient_into_the_state(tmp_path):
    """Stage 4's critic sees the corrected prompt states MCTS searches from, but cannot be gamed:
    no gradient of the value regression reaches the state-delta module or the backbone."""
    from hf_reason import CRSMConfig
    from hf_reason.data import build_tokenizer

    example = load_example()
    args = example.parse_args(["--output_dir", str(tmp_path), *TINY, "--delta_damping", "1.0", "--delta_scale", "2.0"])
    tokenizer = build_tokenizer(vocab_size=300)
    torch.manual_seed(0)
    model = CRSMForCausalLM(
        CRSMConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            state_size=4,
            delta_damping=1.0,
            delta_scale=2.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    with torch.no_grad():
        model.state_delta.state.weight.normal_(std=1.0)
        model.state_delta.channel.weight.normal_(std=1.0)
    prompt = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    continuation = torch.tensor([[13, 14], [15, 16]])
    with torch.no_grad():
        plain = example.step_states(model, prompt, None, continuation)
        mixed = example.step_states(model, prompt, None, continuation, torch.tensor([True, False]))
        cache = model(prompt[:1], use_cache=True).cache_params
        correction = model.state_delta(model.summarize(cache)[0])
    torch.testing.assert_close(mixed[:, 1], plain[:, 1], rtol=0, atol=0)  # the uncorrected row
    torch.testing.assert_close(mixed[0, 0], plain[0, 0] + correction[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(mixed[1:, 0], plain[1:, 0])  # and the correction carries on into later states

    pool = example.arithmetic_pool(args, seed=0)
    model.train()
    loss = example.value_loss(
        model, args, tokenizer, pool, np.random.default_rng(0), torch.device("cpu"), corrected_share=1.0
    )
    loss.backward()
    assert model.value_head.mlp[0].weight.grad.abs().sum() > 0
    assert model.state_delta.state.weight.grad is None and model.state_delta.channel.weight.grad is None
    assert all(p.grad is None for p in model.backbone.layers.parameters())


def test_cpu_small_preset_sets_the_defaults_and_explicit_flags_win(tmp_path):
    from transformers.utils.import_utils import is_mambapy_available

    example = load_example()
    args = example.parse_args(["--output_dir", str(tmp_path), "--preset", "cpu-small", "--lm_steps", "7"])
    assert args.lm_steps == 7 and args.hidden_size == 128 and args.vocab_size == 512 and args.max_value == 9
    assert args.use_mambapy == bool(is_mambapy_available())
    args = example.parse_args(["--output_dir", str(tmp_path), "--preset", "cpu-small", "--use_mambapy", "false"])
    assert args.use_mambapy is False and args.lm_steps == example.PRESETS["cpu-small"]["lm_steps"]
    assert example.parse_args(["--output_dir", str(tmp_path)]).hidden_size == 256
    with pytest.raises(ValueError, match="preset"):
        example.parse_args(["--output_dir", str(tmp_path), "--preset", "gpu-huge"])


def test_bad_stage_names_are_rejected(tmp_path):
    example = load_example()
    with pytest.raises(ValueError, match="stages"):
        example.main(["--output_dir", str(tmp_path), "--stages", "lm,rl"])


@pytest.mark.slow
def test_two_processes_average_gradients_like_ddp_and_end_with_identical_weights(tmp_path):
    result = accelerate_launch(str(REPO_ROOT / "tests" / "scripts" / "crsm_ddp_check.py"), str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # used everywhere: the mean of 1 and 2; used on rank 0 only: (4 + 0) / 2, as DDP does; used
    # nowhere: no gradient at all (so AdamW leaves it alone, as in a single process)
    for r in ranks:
        assert r["grads"] == {"both": [1.5] * 3, "rank0_only": [2.0] * 3, "unused": None}
    assert ranks[0]["final"] == ranks[1]["final"] == str(tmp_path / "run" / "4_joint" / "final")
    for stage in ("1_lm", "2_value", "3_dynamics", "4_joint"):
        report = json.loads((tmp_path / "run" / stage / "final" / "processes.json").read_text())
        assert len(report["weights_sha256"]) == 2
        assert report["weights_sha256"][0] == report["weights_sha256"][1], stage
        # each process computed its loss on its own batch, so the agreement is the averaging's doing
        assert report["first_local_loss"][0] != report["first_local_loss"][1], stage
    # the saved model is the one both processes hold
    model = CRSMForCausalLM.from_pretrained(tmp_path / "run" / "4_joint" / "final")
    example = load_example()
    final_report = json.loads((tmp_path / "run" / "4_joint" / "final" / "processes.json").read_text())
    assert example.weights_digest(model).hex() == final_report["weights_sha256"][0]
