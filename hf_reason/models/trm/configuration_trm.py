# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""TRM (Tiny Recursive Model) configuration."""

import math
from typing import Optional

from transformers.configuration_utils import PretrainedConfig


# The Auto classes a saved checkpoint maps to when loaded with `trust_remote_code=True`.
# TRM predicts one class per input token, so the task head is registered as a token
# classifier; `hf_reason.AutoModelForPuzzleSolving` is the in-process alias.
TRM_AUTO_MAP = {
    "AutoConfig": "configuration_trm.TRMConfig",
    "AutoModel": "modeling_trm.TRMModel",
    "AutoModelForTokenClassification": "modeling_trm.TRMForPuzzleSolving",
}


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")


def _check_float(name: str, value, low: float, high: Optional[float] = None, low_inclusive: bool = True) -> None:
    # NaN fails every comparison, but infinity passes a bound on one side: finiteness is checked too.
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = value >= low if low_inclusive else value > low
        ok = ok and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value!r}.")


class RequireConfigFileMixin:
    """
    Loading that builds a config from a checkpoint only out of a config file of the class's own
    `model_type`, with a clear error otherwise.

    transformers builds a config from its defaults when a local folder has no `config.json`, and
    `AutoConfig` then picks the class by a model type found in the folder's *name*: a `my-trm` folder
    without its config would load as a default-sized TRM (and fail later, on the weights' shapes, or
    not at all). Mixed in before `PretrainedConfig` (or a subclass of it).
    """

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        cls._check_checkpoint_config(config_dict, pretrained_model_name_or_path)
        return config_dict, kwargs

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        # `AutoConfig` reads a checkpoint's dict with the base class's `get_config_dict` (empty without
        # a config file) and passes it here with the checkpoint's `name_or_path`.
        if "name_or_path" in kwargs:
            cls._check_checkpoint_config(config_dict, kwargs["name_or_path"])
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def _check_checkpoint_config(cls, config_dict: dict, source) -> None:
        if not config_dict:
            raise FileNotFoundError(
                f"{source} has no config.json: a {cls.__name__} checkpoint loads only with its config "
                "(`save_pretrained` writes it)."
            )
        if config_dict.get("model_type") != cls.model_type:
            raise ValueError(
                f"The config.json of {source} has model_type {config_dict.get('model_type')!r}; a "
                f"{cls.__name__} loads only a config of model_type {cls.model_type!r}."
            )


class TRMConfig(RequireConfigFileMixin, PretrainedConfig):
    r"""
    Configuration of a [`TRMModel`] / [`TRMForPuzzleSolving`]: the Tiny Recursive Model of
    Jolicoeur-Martineau (2025), "Less is More: Recursive Reasoning with Tiny Networks".

    One small network of `L_layers` blocks is applied recursively to a latent `z` and an answer `y`:
    per H-cycle, `L_cycles` updates `z <- net(z + y + x)` followed by one update `y <- net(y + z)`.
    A forward call runs `H_cycles` such cycles (all but the last without gradient) and is one
    *supervision step*; training repeats up to `halt_max_steps` supervision steps per example,
    carrying `(y, z)` across steps, and a halting head decides when an example is done.

    Every argument is validated: a bad value raises `ValueError` naming the argument.

    Args:
        vocab_size (`int`, *optional*, defaults to 11):
            Number of input/output tokens (for 9x9 Sudoku: pad, blank and digits 1-9).
        seq_len (`int`, *optional*, defaults to 81):
            Length of every puzzle sequence (grids are flattened; 81 for 9x9 Sudoku, 900 for ARC).
        hidden_size (`int`, *optional*, defaults to 512):
            Width of the network and of the states `y` and `z`.
        num_heads (`int`, *optional*, defaults to 8):
            Attention heads (`mixer="attention"`); must divide `hidden_size`.
        expansion (`float`, *optional*, defaults to 4.0):
            SwiGLU expansion factor; the intermediate size is `round(expansion * hidden * 2/3)`
            rounded up to a multiple of 256, as in the reference, unless `intermediate_size` is set.
        intermediate_size (`int`, *optional*):
            Explicit SwiGLU intermediate size, overriding the rule above (useful for tiny models).
        L_layers (`int`, *optional*, defaults to 2):
            Blocks in the one recursive network.
        H_cycles (`int`, *optional*, defaults to 3):
            Outer cycles per supervision step (`T` in the paper); the first `H_cycles - 1` run
            without gradient.
        L_cycles (`int`, *optional*, defaults to 6):
            Latent updates per H-cycle (`n` in the paper).
        halt_max_steps (`int`, *optional*, defaults to 16):
            Maximum supervision steps (`N_sup`).
        halt_exploration_prob (`float`, *optional*, defaults to 0.1):
            Probability, in training, of drawing a random minimum number of steps before halting
            is allowed (exploration for the halting head). In [0, 1].
        halting (`str`, *optional*, defaults to `"bce"`):
            Halting rule and target. `"bce"` (TRM): halt when `q_halt > 0`, trained with binary
            cross-entropy against "the current answer is fully correct". `"q_learning"` (HRM): halt
            when `q_halt > q_continue`; `q_continue` is trained towards the bootstrapped target
            `sigmoid(max(q_halt', q_continue'))` of the next step. `"dqn"`: halt when
            `q_halt > q_continue` (the greedy policy of a head trained by
            `hf_reason.trainers.DQNHaltingTrainer`); the model's own loss has no halting term.
        q_head_type (`str`, *optional*, defaults to `"linear"`):
            The halting Q-head (see `q_heads.py`): `"linear"` (the method's head on the first
            position), `"mlp"` (an MLP on a pooled summary and the step fraction), `"gru"` (a GRU
            cell whose hidden state is carried across supervision steps in `TRMCarry.q_hidden`
            and reset where a puzzle restarts) or `"attention"` (a learned query over all token
            states).
        q_head_hidden_size (`int`, *optional*, defaults to 64):
            Width of the `"mlp"`, `"gru"` and `"attention"` heads (unused by `"linear"`).
        mixer (`str`, *optional*, defaults to `"attention"`):
            Token mixing in each block: `"attention"` (non-causal self-attention) or `"mlp"`
            (a SwiGLU across the sequence axis, the MLP-mixer the method uses for Sudoku).
        pos_encodings (`str`, *optional*, defaults to `"rope"`):
            `"rope"`, `"learned"` or `"none"`. `"rope"` needs `mixer="attention"`.
        rope_theta (`float`, *optional*, defaults to 10000.0):
            RoPE base.
        puzzle_emb_ndim (`int`, *optional*, defaults to 0):
            Size of the learned per-puzzle embedding (0 turns it off). It is prepended to the
            sequence as `puzzle_emb_len` extra positions.
        num_puzzle_identifiers (`int`, *optional*, defaults to 1):
            Number of puzzle identifiers (rows of the puzzle embedding); identifier 0 is "blank".
        puzzle_emb_len (`int`, *optional*, defaults to 0):
            Positions the puzzle embedding occupies; 0 means `ceil(puzzle_emb_ndim / hidden_size)`.
        loss_type (`str`, *optional*, defaults to `"stablemax"`):
            Token loss: `"stablemax"` (stablemax cross-entropy, as in the method) or `"softmax"`.
        halt_loss_weight (`float`, *optional*, defaults to 0.5):
            Weight of the halting losses added to the token loss.
        rms_norm_eps (`float`, *optional*, defaults to 1e-5):
            Epsilon of the (weightless, post-norm) RMS normalisation.
        pad_token_id (`int`, *optional*, defaults to 0):
            Padding token.
        memory_slots (`int`, *optional*, defaults to 0):
            Slots of the pattern memory bank (`memory_trm.py`); 0 turns it off. Keys are pooled
            latent states written in training (LRU eviction), values are learned, and each H-cycle
            adds the attention read of the bank to the input of its latent updates.
        memory_top_k (`int`, *optional*, defaults to 8):
            Slots each read attends to (at most `memory_slots`).
        memory_temperature (`float`, *optional*, defaults to 0.1):
            Softmax temperature of the read over cosine similarities. > 0.
        memory_write_threshold (`float`, *optional*, defaults to 0.9):
            Cosine similarity at which a written key refreshes an existing slot instead of taking a
            new one. In [-1, 1].
        memory_writes_per_step (`int`, *optional*, defaults to 16):
            New slots taken per training supervision step at most (the most novel keys of the batch).
        memory_retrieval (`str`, *optional*, defaults to `"exact"`):
            `"exact"` (every slot scored) or `"lsh"` (SimHash candidates, for large banks).
        memory_lsh_tables (`int`, *optional*, defaults to 8), memory_lsh_bits (`int`, *optional*, defaults to 12):
            Hash tables and hyperplanes per table of `"lsh"` retrieval (bits in [1, 30]).
        memory_lsh_candidates (`int`, *optional*, defaults to 256):
            Candidate slots scored exactly per query with `"lsh"` (at least `memory_top_k`).
        memory_lsh_seed (`int`, *optional*, defaults to 0):
            Seed of the hyperplanes (saved with the weights, so a reloaded bank hashes the same).

    Example:

    ```python
    >>> from hf_reason import TRMConfig, TRMForPuzzleSolving
    >>> config = TRMConfig(vocab_size=11, seq_len=81, hidden_size=64, num_heads=2, mixer="mlp", pos_encodings="none")
    >>> model = TRMForPuzzleSolving(config)
    ```
    """

    model_type = "trm"
    # Names generic tooling (device maps, TRL, Optimum) reads; TRM has one recursive network.
    attribute_map = {"num_hidden_layers": "L_layers", "num_attention_heads": "num_heads"}

    def __init__(
        self,
        vocab_size: int = 11,
        seq_len: int = 81,
        hidden_size: int = 512,
        num_heads: int = 8,
        expansion: float = 4.0,
        intermediate_size: Optional[int] = None,
        L_layers: int = 2,
        H_cycles: int = 3,
        L_cycles: int = 6,
        halt_max_steps: int = 16,
        halt_exploration_prob: float = 0.1,
        halting: str = "bce",
        q_head_type: str = "linear",
        q_head_hidden_size: int = 64,
        mixer: str = "attention",
        pos_encodings: str = "rope",
        rope_theta: float = 10000.0,
        puzzle_emb_ndim: int = 0,
        num_puzzle_identifiers: int = 1,
        puzzle_emb_len: int = 0,
        loss_type: str = "stablemax",
        halt_loss_weight: float = 0.5,
        rms_norm_eps: float = 1e-5,
        pad_token_id: int = 0,
        memory_slots: int = 0,
        memory_top_k: int = 8,
        memory_temperature: float = 0.1,
        memory_write_threshold: float = 0.9,
        memory_writes_per_step: int = 16,
        memory_retrieval: str = "exact",
        memory_lsh_tables: int = 8,
        memory_lsh_bits: int = 12,
        memory_lsh_candidates: int = 256,
        memory_lsh_seed: int = 0,
        **kwargs,
    ):
        _check_int("vocab_size", vocab_size, 2)
        _check_int("seq_len", seq_len, 1)
        _check_int("hidden_size", hidden_size, 1)
        _check_int("num_heads", num_heads, 1)
        if hidden_size % num_heads != 0:
            raise ValueError(f"`hidden_size` ({hidden_size}) must be divisible by `num_heads` ({num_heads}).")
        _check_float("expansion", expansion, 0.0, low_inclusive=False)
        if intermediate_size is not None:
            _check_int("intermediate_size", intermediate_size, 1)
        _check_int("L_layers", L_layers, 1)
        _check_int("H_cycles", H_cycles, 1)
        _check_int("L_cycles", L_cycles, 1)
        _check_int("halt_max_steps", halt_max_steps, 1)
        _check_float("halt_exploration_prob", halt_exploration_prob, 0.0, 1.0)
        _check_choice("halting", halting, ("bce", "q_learning", "dqn"))
        _check_choice("q_head_type", q_head_type, ("linear", "mlp", "gru", "attention"))
        _check_int("q_head_hidden_size", q_head_hidden_size, 1)
        _check_choice("mixer", mixer, ("attention", "mlp"))
        _check_choice("pos_encodings", pos_encodings, ("rope", "learned", "none"))
        if pos_encodings == "rope" and mixer != "attention":
            raise ValueError(
                "`pos_encodings='rope'` only acts inside attention; with `mixer='mlp'` use "
                "`pos_encodings='learned'` or `'none'` (the MLP mixer is position-aware by itself)."
            )
        _check_float("rope_theta", rope_theta, 0.0, low_inclusive=False)
        _check_int("puzzle_emb_ndim", puzzle_emb_ndim, 0)
        _check_int("num_puzzle_identifiers", num_puzzle_identifiers, 1)
        _check_int("puzzle_emb_len", puzzle_emb_len, 0)
        _check_choice("loss_type", loss_type, ("stablemax", "softmax"))
        _check_float("halt_loss_weight", halt_loss_weight, 0.0)
        _check_float("rms_norm_eps", rms_norm_eps, 0.0, low_inclusive=False)
        _check_int("memory_slots", memory_slots, 0)
        _check_int("memory_top_k", memory_top_k, 1)
        _check_float("memory_temperature", memory_temperature, 0.0, low_inclusive=False)
        _check_float("memory_write_threshold", memory_write_threshold, -1.0, 1.0)
        _check_int("memory_writes_per_step", memory_writes_per_step, 1)
        _check_choice("memory_retrieval", memory_retrieval, ("exact", "lsh"))
        _check_int("memory_lsh_tables", memory_lsh_tables, 1)
        _check_int("memory_lsh_bits", memory_lsh_bits, 1)
        if memory_lsh_bits > 30:
            raise ValueError(f"`memory_lsh_bits` must be <= 30 (codes are int64 sums of bits), got {memory_lsh_bits}.")
        _check_int("memory_lsh_candidates", memory_lsh_candidates, memory_top_k)
        _check_int("memory_lsh_seed", memory_lsh_seed, 0)
        if pad_token_id is not None:
            _check_int("pad_token_id", pad_token_id, 0)
            if pad_token_id >= vocab_size:
                raise ValueError(f"`pad_token_id` ({pad_token_id}) must be < `vocab_size` ({vocab_size}).")

        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.expansion = expansion
        self.intermediate_size = intermediate_size
        self.L_layers = L_layers
        self.H_cycles = H_cycles
        self.L_cycles = L_cycles
        self.halt_max_steps = halt_max_steps
        self.halt_exploration_prob = halt_exploration_prob
        self.halting = halting
        self.q_head_type = q_head_type
        self.q_head_hidden_size = q_head_hidden_size
        self.mixer = mixer
        self.pos_encodings = pos_encodings
        self.rope_theta = rope_theta
        self.puzzle_emb_ndim = puzzle_emb_ndim
        self.num_puzzle_identifiers = num_puzzle_identifiers
        self.puzzle_emb_len = puzzle_emb_len
        self.loss_type = loss_type
        self.halt_loss_weight = halt_loss_weight
        self.rms_norm_eps = rms_norm_eps
        self.memory_slots = memory_slots
        self.memory_top_k = memory_top_k
        self.memory_temperature = memory_temperature
        self.memory_write_threshold = memory_write_threshold
        self.memory_writes_per_step = memory_writes_per_step
        self.memory_retrieval = memory_retrieval
        self.memory_lsh_tables = memory_lsh_tables
        self.memory_lsh_bits = memory_lsh_bits
        self.memory_lsh_candidates = memory_lsh_candidates
        self.memory_lsh_seed = memory_lsh_seed
        # Stock TRL trainers read `config.auto_map` when they rebuild a reference model, so it is
        # present from construction, not only after `save_pretrained`.
        kwargs.setdefault("auto_map", dict(TRM_AUTO_MAP))
        # The method keeps separate input embeddings and output head.
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    @property
    def puzzle_prefix_len(self) -> int:
        """Positions prepended for the puzzle embedding (0 when it is off)."""
        if self.puzzle_emb_ndim == 0:
            return 0
        return self.puzzle_emb_len or -(-self.puzzle_emb_ndim // self.hidden_size)

    @property
    def swiglu_intermediate_size(self) -> int:
        if self.intermediate_size is not None:
            return self.intermediate_size
        return _round_up(round(self.expansion * self.hidden_size * 2 / 3), 256)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


__all__ = ["TRMConfig"]
