import json

import pytest
from conftest import tiny_trm_config

from hf_reason import TRMConfig
from hf_reason.models.trm.configuration_trm import TRM_AUTO_MAP


# (field, bad value, words the message must contain besides the field name)
BAD_VALUES = [
    ("vocab_size", 1, ">= 2"),
    ("vocab_size", 3.5, "integer"),
    ("seq_len", 0, ">= 1"),
    ("hidden_size", 0, ">= 1"),
    ("hidden_size", 33, "divisible"),
    ("num_heads", 0, ">= 1"),
    ("num_heads", 5, "divisible"),
    ("expansion", 0, "> 0"),
    ("expansion", "4", "number"),
    ("intermediate_size", 0, ">= 1"),
    ("L_layers", 0, ">= 1"),
    ("H_cycles", 0, ">= 1"),
    ("L_cycles", -1, ">= 1"),
    ("halt_max_steps", 0, ">= 1"),
    ("halt_max_steps", True, "integer"),
    ("halt_exploration_prob", 1.5, "<= 1"),
    ("halt_exploration_prob", -0.1, ">= 0"),
    ("halting", "act", "'bce', 'q_learning'"),
    ("q_head_type", "lstm", "'linear', 'mlp', 'gru', 'attention'"),
    ("q_head_hidden_size", 0, ">= 1"),
    ("mixer", "conv", "'attention', 'mlp'"),
    ("pos_encodings", "alibi", "'rope', 'learned', 'none'"),
    ("rope_theta", 0, "> 0"),
    ("puzzle_emb_ndim", -1, ">= 0"),
    ("num_puzzle_identifiers", 0, ">= 1"),
    ("puzzle_emb_len", -2, ">= 0"),
    ("loss_type", "focal", "'stablemax', 'softmax'"),
    ("halt_loss_weight", -1.0, ">= 0"),
    ("rms_norm_eps", 0.0, "> 0"),
    ("pad_token_id", 11, "< `vocab_size`"),
    ("memory_slots", -1, ">= 0"),
    ("memory_top_k", 0, ">= 1"),
    ("memory_temperature", 0.0, "> 0"),
    ("memory_write_threshold", 1.5, "<= 1"),
    ("memory_writes_per_step", 0, ">= 1"),
    ("memory_retrieval", "faiss", "'exact', 'lsh'"),
    ("memory_lsh_tables", 0, ">= 1"),
    ("memory_lsh_bits", 31, "<= 30"),
    ("memory_lsh_candidates", 4, ">= 8"),
    ("memory_lsh_seed", -1, ">= 0"),
]


@pytest.mark.parametrize("field,value,words", BAD_VALUES, ids=[f"{f}={v!r}" for f, v, _ in BAD_VALUES])
def test_bad_value_names_field_and_allowed_values(field, value, words):
    with pytest.raises(ValueError) as excinfo:
        tiny_trm_config(**{field: value})
    message = str(excinfo.value)
    assert f"`{field}`" in message
    assert words in message


def test_every_init_argument_is_covered_by_validation_tests():
    import inspect

    params = set(inspect.signature(TRMConfig.__init__).parameters) - {"self", "kwargs"}
    assert params == {field for field, _, _ in BAD_VALUES}


def test_rope_requires_attention_mixer():
    with pytest.raises(ValueError, match="pos_encodings='rope'"):
        tiny_trm_config(mixer="mlp", pos_encodings="rope")
    tiny_trm_config(mixer="mlp", pos_encodings="none")


def test_auto_map_present_before_saving():
    config = TRMConfig()
    assert config.auto_map == TRM_AUTO_MAP
    # and survives a round trip through JSON
    assert json.loads(config.to_json_string())["auto_map"] == TRM_AUTO_MAP


def test_derived_sizes_follow_the_reference():
    config = TRMConfig(hidden_size=512, expansion=4, puzzle_emb_ndim=512)
    assert config.swiglu_intermediate_size == 1536  # round(512*4*2/3)=1365 -> next multiple of 256
    assert config.puzzle_prefix_len == 1
    assert TRMConfig(hidden_size=64, num_heads=2, puzzle_emb_ndim=100).puzzle_prefix_len == 2
    assert TRMConfig(puzzle_emb_ndim=0).puzzle_prefix_len == 0
    assert config.num_hidden_layers == config.L_layers and config.num_attention_heads == config.num_heads
