"""examples/train_crsm.py: all four stages run end to end, and an interrupted stage resumes exactly."""

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from hf_reason import CRSMForCausalLM

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "train_crsm.py"
TINY = [
    "--hidden_size", "32", "--num_hidden_layers", "1", "--state_size", "4", "--vocab_size", "300",
    "--batch_size", "2", "--seq_len", "24", "--max_new_tokens", "6", "--dynamics_len", "6",
    "--teacher_tokens", "3", "--save_steps", "2", "--logging_steps", "1",
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
    assert torch.equal(value_final.backbone.layers[0].mixer.in_proj.weight, lm_final.backbone.layers[0].mixer.in_proj.weight)
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


def test_bad_stage_names_are_rejected(tmp_path):
    example = load_example()
    with pytest.raises(ValueError, match="stages"):
        example.main(["--output_dir", str(tmp_path), "--stages", "lm,rl"])
