import ast
from pathlib import Path

import pytest
import torch
from conftest import run_without_hf_reason, tiny_trm_config

from hf_reason import AutoModelForPuzzleSolving, TRMForPuzzleSolving
from hf_reason.models.trm import TRMAttentionQHead, TRMGRUQHead, TRMHaltingHead, TRMMLPQHead


HEADS = {"linear": TRMHaltingHead, "mlp": TRMMLPQHead, "gru": TRMGRUQHead, "attention": TRMAttentionQHead}


def make_model(q_head_type: str, seed: int = 0, **overrides) -> TRMForPuzzleSolving:
    torch.manual_seed(seed)
    config = tiny_trm_config(q_head_type=q_head_type, q_head_hidden_size=24, **overrides)
    return TRMForPuzzleSolving(config).eval()


def make_batch(config, batch_size: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (batch_size, config.seq_len), generator=gen)
    labels = torch.randint(1, config.vocab_size, (batch_size, config.seq_len), generator=gen)
    return input_ids, labels


def randomise_head(model):
    # Fresh heads output exactly 0 (their init); random weights make the checks below meaningful.
    with torch.no_grad():
        for param in model.q_head.parameters():
            param.normal_(0, 0.5, generator=torch.Generator().manual_seed(param.numel()))


@pytest.mark.parametrize("q_head_type", HEADS)
def test_each_head_is_selected_by_config_and_returns_both_values(q_head_type):
    model = make_model(q_head_type)
    assert type(model.q_head) is HEADS[q_head_type]
    input_ids, labels = make_batch(model.config)
    out = model(input_ids, labels=labels)
    assert out.q_halt_logits.shape == out.q_continue_logits.shape == (3,)
    assert out.q_halt_logits.dtype == torch.float32
    assert (out.carry.q_hidden is not None) == (q_head_type == "gru")
    if q_head_type == "gru":
        assert out.carry.q_hidden.shape == (3, 24)
    # no head halts before training, under either rule
    assert not out.carry.halted.any()
    assert not model.halt_decision(out.q_halt_logits, out.q_continue_logits).any()


@pytest.mark.parametrize("q_head_type", ["mlp", "gru", "attention"])
def test_new_heads_start_at_zero_and_train(q_head_type):
    model = make_model(q_head_type).train()
    input_ids, labels = make_batch(model.config)
    out = model(input_ids, labels=labels)
    assert torch.all(out.q_halt_logits == 0) and torch.all(out.q_continue_logits == 0)
    out.loss.backward()
    assert model.q_head.output_proj.weight.grad.abs().sum() > 0  # the BCE halting loss reaches it


@pytest.mark.parametrize("q_head_type", ["mlp", "gru", "attention"])
def test_save_load_round_trip_keeps_the_head(q_head_type, tmp_path):
    model = make_model(q_head_type)
    randomise_head(model)
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "q_heads.py").is_file()  # the code travels with the checkpoint
    reloaded = AutoModelForPuzzleSolving.from_pretrained(tmp_path / "ckpt").eval()
    assert reloaded.config.q_head_type == q_head_type
    input_ids, _ = make_batch(model.config)
    with torch.no_grad():
        a, b = model(input_ids), reloaded(input_ids)
        a2, b2 = model(input_ids, carry=a.carry), reloaded(input_ids, carry=b.carry)
    torch.testing.assert_close(a2.q_halt_logits, b2.q_halt_logits, rtol=0, atol=0)
    torch.testing.assert_close(a2.q_continue_logits, b2.q_continue_logits, rtol=0, atol=0)


def test_q_heads_module_imports_only_torch_transformers_and_its_folder():
    source = Path(__file__).resolve().parents[1] / "hf_reason" / "models" / "trm" / "q_heads.py"
    roots = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add("." if node.level else node.module.split(".")[0])
    assert roots <= {"torch", "transformers", "typing", "."}, roots


def test_gru_state_resets_where_a_puzzle_restarts():
    model = make_model("gru")
    randomise_head(model)
    input_ids, _ = make_batch(model.config)
    with torch.no_grad():
        first = model(input_ids)
        carry = first.carry
        assert carry.q_hidden.abs().sum() > 0
        carry.halted = torch.tensor([True, False, False])
        second = model(input_ids, carry=carry)
        fresh = model(input_ids)
    # row 0 restarted: same Q-values and memory as a first step from scratch
    torch.testing.assert_close(second.q_halt_logits[0], fresh.q_halt_logits[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(second.carry.q_hidden[0], fresh.carry.q_hidden[0], rtol=1e-6, atol=1e-6)
    # rows 1-2 continued: their memory is not the fresh one
    assert not torch.allclose(second.carry.q_hidden[1:], fresh.carry.q_hidden[1:])
    assert second.carry.steps.tolist() == [1, 2, 2]


def test_gru_state_is_what_the_cell_computes_from_the_previous_state():
    model = make_model("gru")
    randomise_head(model)
    input_ids, _ = make_batch(model.config)
    with torch.no_grad():
        first = model(input_ids)
        first.carry.halted = torch.zeros(3, dtype=torch.bool)  # the random head may have halted rows
        second = model(input_ids, carry=first.carry)
        observation = model.q_head.summarize(second.carry.y)
        fraction = torch.full((3,), 2 / model.config.halt_max_steps)
        expected = model.q_head.cell(torch.cat((observation, fraction.unsqueeze(-1)), -1), first.carry.q_hidden)
    torch.testing.assert_close(second.carry.q_hidden, expected, rtol=1e-6, atol=1e-6)


def test_gru_memory_follows_rows_through_solve():
    model = make_model("gru", halting="dqn", halt_max_steps=4)
    randomise_head(model)
    input_ids, _ = make_batch(model.config, batch_size=4)
    solved = model.solve(input_ids)
    # each row alone gives the same halting step: rows leaving the batch do not mix memories
    for row in range(4):
        alone = model.solve(input_ids[row : row + 1])
        assert alone.steps.item() == solved.steps[row].item()
        torch.testing.assert_close(alone.predictions[0], solved.predictions[row])


def test_q_learning_target_with_the_gru_head_uses_its_memory():
    model = make_model("gru", halting="q_learning", halt_max_steps=3)
    randomise_head(model)
    input_ids, labels = make_batch(model.config)
    with torch.no_grad():
        # the bootstrap target is computed in training mode only (it costs one more step)
        out = model.train()(input_ids, labels=labels)
        carry = out.carry
        carry.halted = torch.zeros(3, dtype=torch.bool)
        next_out = model.eval()(input_ids, carry=carry)
    assert out.target_q_continue is not None
    expected = torch.sigmoid(torch.maximum(next_out.q_halt_logits, next_out.q_continue_logits))
    torch.testing.assert_close(out.target_q_continue, expected, rtol=1e-5, atol=1e-5)


def test_dqn_halting_mode_drops_the_halting_loss_and_halts_greedily():
    model = make_model("mlp", halting="dqn")
    randomise_head(model)
    input_ids, labels = make_batch(model.config)
    out = model(input_ids, labels=labels)
    assert out.q_halt_loss == 0 and out.q_continue_loss == 0
    torch.testing.assert_close(out.loss, out.lm_loss)
    expected = out.q_halt_logits > out.q_continue_logits
    assert torch.equal(model.halt_decision(out.q_halt_logits, out.q_continue_logits), expected)


def test_carry_select_keeps_the_gru_memory():
    model = make_model("gru")
    carry = model.model.initial_carry(4)
    assert carry.q_hidden.shape == (4, 24)
    picked = carry.select(torch.tensor([True, False, True, False]))
    assert picked.q_hidden.shape == (2, 24)
    assert make_model("mlp").model.initial_carry(2).select(torch.tensor([0])).q_hidden is None


def test_replace_q_head_gives_a_fresh_head_that_saves_and_reloads(tmp_path):
    model = make_model("linear")
    trunk = model.model.layers[0].mlp.down_proj.weight.clone()
    head = model.replace_q_head("gru", 12)
    assert type(head) is TRMGRUQHead and model.q_head is head and model.config.q_head_type == "gru"
    assert torch.all(head.output_proj.weight == 0)
    assert torch.equal(model.model.layers[0].mlp.down_proj.weight, trunk)  # the TRM is untouched
    assert model.model.initial_carry(2).q_hidden.shape == (2, 12)
    model.save_pretrained(tmp_path / "ckpt")
    assert type(AutoModelForPuzzleSolving.from_pretrained(tmp_path / "ckpt").q_head) is TRMGRUQHead
    with pytest.raises(ValueError, match="`q_head_type`"):
        model.replace_q_head("lstm")
    assert model.config.q_head_type == "gru"  # a rejected value changes nothing


def test_gru_head_checkpoint_loads_with_trust_remote_code_without_hf_reason(tmp_path):

    model = make_model("gru", halting="dqn")
    randomise_head(model)
    model.save_pretrained(tmp_path / "ckpt")
    input_ids, _ = make_batch(model.config)
    torch.save(input_ids, tmp_path / "inputs.pt")
    run_without_hf_reason(
        f"""
        import torch
        from transformers import AutoModelForTokenClassification
        model = AutoModelForTokenClassification.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True)
        assert type(model.q_head).__module__.startswith("transformers_modules"), type(model.q_head).__module__
        solved = model.eval().solve(torch.load({str(tmp_path / "inputs.pt")!r}))
        torch.save(solved.steps, {str(tmp_path / "steps.pt")!r})
        """,
        cwd=tmp_path,
    )
    assert torch.equal(torch.load(tmp_path / "steps.pt"), model.solve(input_ids).steps)
