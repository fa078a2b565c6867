"""The pattern memory bank of TRM (hf_reason.models.trm.memory_trm): read, write, LRU eviction,
LSH retrieval, training-only writes, save / load and ONNX export."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import REPO_ROOT, accelerate_launch, tiny_trm_config

from hf_reason import AutoModelForPuzzleSolving, TRMForPuzzleSolving
from hf_reason.export import ORTTRMForPuzzleSolving, export_pretrained
from hf_reason.models.trm.memory_trm import TRMPatternMemory, pool_states


def bank(slots=3, **overrides):
    config = tiny_trm_config(memory_slots=slots, memory_top_k=min(2, slots), **overrides)
    return TRMPatternMemory(config)


def latent_for(direction: torch.Tensor, positions: int = 4) -> torch.Tensor:
    """Latent states `(1, positions, hidden)` whose pooled key is `direction` (normalised)."""
    return direction.view(1, 1, -1).expand(1, positions, -1).clone()


def basis(i: int, hidden: int = 32) -> torch.Tensor:
    return F.one_hot(torch.tensor(i), hidden).float()


def test_empty_bank_reads_nothing_and_memory_model_starts_as_the_plain_one():
    memory = bank()
    read = memory.read(torch.randn(2, 5, 32))
    assert read.read.shape == (2, 1, 32) and not read.read.any()
    assert read.use.tolist() == [0.0, 0.0] and not read.weights.any()
    torch.manual_seed(0)
    plain = TRMForPuzzleSolving(tiny_trm_config()).eval()
    with_memory = TRMForPuzzleSolving(tiny_trm_config(memory_slots=4)).eval()
    missing = with_memory.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert all(k.startswith("model.memory.") for k in missing) and missing
    ids = torch.randint(1, 11, (3, 16))
    torch.testing.assert_close(with_memory(ids).logits, plain(ids).logits)


def test_write_fills_refreshes_and_evicts_the_least_recently_used():
    memory = bank(slots=3, memory_write_threshold=0.9)
    for i in range(3):
        memory.write(latent_for(basis(i)))
    assert memory.filled.all() and memory.last_used.tolist() == [1, 2, 3]
    with torch.no_grad():
        memory.values.fill_(1.0)
    # A near-duplicate of key 1 refreshes slot 1: no new slot, its value kept, its use renewed.
    near = basis(1) + 0.1 * basis(5)
    memory.write(latent_for(near))
    assert memory.last_used.tolist() == [1, 4, 3] and memory.values[1].eq(1.0).all()
    assert F.cosine_similarity(memory.keys[1], F.normalize(basis(1) + F.normalize(near, dim=0), dim=0), dim=0) > 0.999
    # Reading key 0 touches slot 0; the next novel key then evicts slot 2, the least recently used.
    touched = memory.read(latent_for(basis(0)))
    memory.write(latent_for(basis(7)), touched=touched)
    assert torch.equal(memory.keys[2], basis(7)) and memory.values[2].eq(0.0).all()
    assert memory.values[0].eq(1.0).all() and memory.last_used[2] == memory.clock == 5


def test_writes_per_step_keeps_the_most_novel_keys():
    memory = bank(slots=8, memory_writes_per_step=2, memory_write_threshold=0.99)
    memory.write(latent_for(basis(0)))
    batch = torch.stack([basis(0) + 0.5 * basis(1), basis(2), basis(0) + 0.2 * basis(3)])
    memory.write(batch.unsqueeze(1).expand(3, 4, 32).clone())
    assert int(memory.filled.sum()) == 3  # two new slots, not three
    kept = {tuple(k.nonzero().squeeze(-1).tolist()) for k in memory.keys[memory.filled]}
    assert kept == {(0,), (2,), (0, 1)}  # basis 2 and the less similar of the two near-duplicates


def test_read_attends_to_the_nearest_slots_and_sends_gradient_to_their_values():
    memory = bank(slots=4, memory_temperature=0.05)
    for i in range(4):
        memory.write(latent_for(basis(i)))
    slot_of = {int(k.argmax()): s for s, k in enumerate(memory.keys)}
    with torch.no_grad():
        memory.values.copy_(memory.keys * 10)
    read = memory.read(latent_for(basis(2) + 0.1 * basis(3)))
    assert read.slots[0].tolist() == [slot_of[2], slot_of[3]]  # top_k = 2, nearest first
    assert read.weights[0, 0] > 0.5 and 0.9 < read.use[0] <= 1.0
    assert read.read[0, 0, 2] > read.read[0, 0, 3] > 0 and read.read[0, 0, :2].eq(0).all()
    read.read.sum().backward()
    assert memory.values.grad[slot_of[2]].abs().sum() > 0 and memory.values.grad[slot_of[0]].abs().sum() == 0


def test_lsh_finds_what_exact_retrieval_finds():
    torch.manual_seed(0)
    config = dict(memory_lsh_tables=8, memory_lsh_bits=8)
    exact, lsh = bank(512, **config), bank(512, **config, memory_retrieval="lsh", memory_lsh_candidates=64)
    keys = F.normalize(torch.randn(512, 32), dim=-1)
    for memory in (exact, lsh):
        memory.writes_per_step = 512
        memory.write(keys.unsqueeze(1))
    assert exact.filled.all() and lsh.filled.all()
    queries = F.normalize(keys[:200] + 0.05 * torch.randn(200, 32), dim=-1).unsqueeze(1)
    found_exact, found_lsh = exact.read(queries).slots[:, 0], lsh.read(queries).slots[:, 0]
    torch.testing.assert_close(exact.keys[found_exact], keys[:200])
    assert (found_lsh == found_exact).float().mean() >= 0.9
    assert torch.equal(lsh.codes, lsh.hash(lsh.keys))


def test_only_training_forwards_write():
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(memory_slots=8, memory_writes_per_step=3))
    ids = torch.randint(1, 11, (4, 16))
    model.eval()
    model(ids)
    assert not model.model.memory.filled.any() and model.model.memory.clock == 0
    model.train()
    out = model(ids, labels=ids)
    assert int(model.model.memory.filled.sum()) == 3 and model.model.memory.clock == 1
    assert out.memory_use.shape == (4,)
    out.loss.backward()  # the values take part in the graph without error
    keys = pool_states(out.carry.z)
    assert (keys @ model.model.memory.keys[model.model.memory.filled].T).max(-1).values.max() > 0.999


def test_bank_and_config_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(
        tiny_trm_config(memory_slots=6, memory_top_k=2, memory_retrieval="lsh", memory_lsh_candidates=6)
    )
    model.train()
    for seed in range(3):
        model(torch.randint(1, 11, (2, 16), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        model.model.memory.values.normal_()
    model.eval().save_pretrained(tmp_path)
    loaded = AutoModelForPuzzleSolving.from_pretrained(tmp_path).eval()
    assert loaded.config.memory_slots == 6 and loaded.config.memory_retrieval == "lsh"
    for name, tensor in model.model.memory.state_dict().items():
        assert torch.equal(loaded.model.memory.state_dict()[name], tensor), name
    ids = torch.randint(1, 11, (3, 16))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    assert loaded(ids).memory_use.gt(0).any()


def test_onnx_export_reads_the_bank(tmp_path):
    torch.manual_seed(0)
    model = TRMForPuzzleSolving(
        tiny_trm_config(memory_slots=8, memory_top_k=2, memory_retrieval="lsh", memory_lsh_candidates=8)
    )
    model.train()
    for seed in range(3):
        model(torch.randint(1, 11, (4, 16), generator=torch.Generator().manual_seed(seed)))
    with torch.no_grad():
        model.model.memory.values.normal_()
    model.eval()
    report = export_pretrained(model, tmp_path, precision="fp32", progress=False)
    assert max(report["parity"]["max_abs_diff_per_step"].values()) < 1e-4
    ort_model = ORTTRMForPuzzleSolving.from_pretrained(tmp_path)
    ids = torch.randint(1, 11, (5, 16))
    with torch.no_grad():
        torch.testing.assert_close(ort_model(ids).logits, model(ids).logits, rtol=0, atol=1e-4)
        # The bank matters to the answer: without its values the logits differ.
        model.model.memory.values.zero_()
        assert not torch.allclose(ort_model(ids).logits, model(ids).logits, atol=1e-3)


def test_deep_supervision_ema_copies_the_bank(tmp_path):
    from datasets import Dataset

    from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer

    torch.manual_seed(0)
    model = TRMForPuzzleSolving(tiny_trm_config(memory_slots=8, memory_writes_per_step=2))
    gen = torch.Generator().manual_seed(0)
    data = Dataset.from_dict(
        {
            "input_ids": torch.randint(1, 11, (16, 16), generator=gen).tolist(),
            "labels": torch.randint(1, 11, (16, 16), generator=gen).tolist(),
        }
    )
    args = DeepSupervisionConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=3,
        ema_decay=0.9,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = DeepSupervisionTrainer(model=model, args=args, train_dataset=data)
    trainer.train()
    raw, ema = trainer.model.model.memory, trainer.ema.module.model.memory
    assert int(raw.filled.sum()) == 6 and raw.clock == 3
    for name in ("keys", "filled", "last_used", "clock"):
        assert torch.equal(getattr(ema, name), getattr(raw, name)), name


@pytest.mark.slow
def test_two_processes_gather_their_writes_into_one_identical_bank(tmp_path):
    result = accelerate_launch(
        str(REPO_ROOT / "tests" / "scripts" / "memory_ddp_check.py"), str(tmp_path), timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    zero, one = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert zero["world_size"] == one["world_size"] == 2
    # each rank wrote only its own unit vector; both banks hold both, in the same slots
    assert zero["keys"] == one["keys"]
    assert sorted(zero["keys"]) == sorted([basis(0).tolist(), basis(1).tolist()])
    assert zero["model_bank"] == one["model_bank"]
    assert zero["model_filled"] == one["model_filled"] > 0
