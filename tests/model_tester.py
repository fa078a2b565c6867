"""The checks every model family must pass, in the spirit of transformers' `ModelTesterMixin`.

A family's test module defines a `Test...` class with `ModelTesterMixin` and says how to build a
tiny config, a batch and the outputs to compare; the mixin then checks what users of any
transformers model rely on: save / load, the Auto classes, tuple vs dict outputs, batching,
gradient checkpointing, dtypes, resizing embeddings, `generate` with and without cache, loading
with `trust_remote_code=True` in a clean interpreter without hf-reason, and the refusal of bad
inputs (ids out of the vocabulary or of a float dtype, a folder without its config, non-finite
config floats, an empty batch to `generate`).
"""

import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any, Optional

import pytest
import torch
from conftest import run_without_hf_reason
from transformers import AutoConfig, AutoModel, PretrainedConfig


def _assert_same(actual, expected, rtol: float = 0.0, atol: float = 0.0, name: str = "output"):
    """Tensors close (exactly by default); anything else equal."""
    if isinstance(expected, torch.Tensor):
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=name)
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), name
        for key in expected:
            _assert_same(actual[key], expected[key], rtol, atol, f"{name}.{key}")
    else:
        assert actual == expected, name


class ModelTesterMixin:
    """Mix into a `Test<Family>...` class and set the attributes and methods below.

    Attributes:
        model_class: the family's main head (what the checkpoint's `architectures` names).
        base_model_class: the bare model `AutoModel` loads.
        auto_classes: Auto classes that must load `model_class` from a saved folder.
        other_heads: `{Auto class: head class}` of further heads loading from the same folder.
        remote_code_files: files `save_pretrained` must copy next to the weights.
        remote_auto_class: the transformers Auto class a user without hf-reason loads it with.
        config_variants: named config overrides; the round-trip and batching checks run on each.
        is_causal_lm: the model has `generate` (checked with and without the cache).
        batch_tolerance: `(rtol, atol)` of batched vs one-at-a-time outputs (kernels differ by batch).
        reload_tolerance: `(rtol, atol)` of a reloaded model's outputs (its weights must be equal). Weights
            loaded from safetensors sit at other memory alignments, and some CPU kernels then sum
            in another order: exact by default, a few ulps where a family's outputs show it.
        remote_code_variant: the `config_variants` entry the clean-interpreter load uses.
        float32_parameters: name substrings of parameters that stay float32 when loaded in another
            dtype, as the transformers blocks a family reuses keep them (Mamba's `A_log`).
        inference_only_inputs: keys of `prepare_inputs` left out of training forwards.
    """

    model_class: type
    base_model_class: type
    auto_classes: tuple = ()
    other_heads: dict = {}
    remote_code_files: frozenset = frozenset()
    remote_auto_class: str = ""
    config_variants: dict = {"default": {}}
    is_causal_lm: bool = False
    batch_tolerance: tuple = (1e-5, 1e-5)
    reload_tolerance: tuple = (0.0, 0.0)
    remote_code_variant: str = "default"
    inference_only_inputs: tuple = ()
    float32_parameters: tuple = ()

    # ----------------------------------------------------------------- what each family provides
    def get_config(self, **overrides):
        raise NotImplementedError

    def prepare_inputs(self, config, batch_size: int = 3, seed: int = 0) -> dict:
        """Keyword arguments of one forward, with `labels` so that a loss comes out."""
        raise NotImplementedError

    def outputs_to_compare(self, output) -> dict:
        """The tensors of a forward's output that two equivalent models must agree on (read by key,
        `output["carry"]["y"]`, so that the plain dict a clean interpreter sends back works too)."""
        return {"logits": output["logits"]}

    def select_rows(self, inputs: dict, index: slice) -> dict:
        """Rows `index` of a batch (every batch-first tensor sliced)."""
        return {k: v[index] if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    # A module-level function `f(model, inputs) -> dict` using only the model's own API (no hf-reason
    # import): its source runs in the clean interpreter too, and both sides must give the same.
    family_outputs: Optional[Callable[[Any, dict], dict]] = None

    # ----------------------------------------------------------------- helpers
    def make_model(self, seed: int = 0, **overrides):
        torch.manual_seed(seed)
        return self.model_class(self.get_config(**overrides)).eval()

    def training_inputs(self, config) -> dict:
        inputs = self.prepare_inputs(config)
        return {k: v for k, v in inputs.items() if k not in self.inference_only_inputs}

    def forward(self, model, inputs: dict) -> dict:
        with torch.no_grad():
            return self.outputs_to_compare(model(**inputs, return_dict=True))

    # ----------------------------------------------------------------- the checks
    def test_save_load_round_trip_is_exact_and_safetensors_only(self, tmp_path):
        for name, overrides in self.config_variants.items():
            model = self.make_model(**overrides)
            inputs = self.prepare_inputs(model.config)
            folder = tmp_path / name
            model.save_pretrained(folder)
            files = {p.name for p in folder.iterdir()}
            assert "model.safetensors" in files, files
            assert not any(f.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle")) for f in files), files
            assert self.remote_code_files <= files, self.remote_code_files - files
            auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
            assert auto_map[self.remote_auto_class].endswith(f".{self.model_class.__name__}")
            reloaded = self.model_class.from_pretrained(folder).eval()
            state, reloaded_state = model.state_dict(), reloaded.state_dict()
            assert state.keys() == reloaded_state.keys()
            for key, tensor in state.items():
                torch.testing.assert_close(reloaded_state[key], tensor, rtol=0, atol=0, msg=f"{name}: {key}")
            _assert_same(self.forward(reloaded, inputs), self.forward(model, inputs), *self.reload_tolerance, name)

    def test_auto_classes_load_the_family(self, tmp_path):
        model = self.make_model()
        model.save_pretrained(tmp_path)
        inputs = self.prepare_inputs(model.config)
        expected = self.forward(model, inputs)
        assert isinstance(AutoConfig.from_pretrained(tmp_path), type(model.config))
        assert type(AutoModel.from_pretrained(tmp_path)) is self.base_model_class
        for auto_class in self.auto_classes:
            loaded = auto_class.from_pretrained(tmp_path).eval()
            assert type(loaded) is self.model_class, auto_class
            _assert_same(self.forward(loaded, inputs), expected, *self.reload_tolerance, auto_class.__name__)
            assert type(auto_class.from_config(self.get_config())) is self.model_class
        for auto_class, head_class in self.other_heads.items():
            assert type(auto_class.from_pretrained(tmp_path)) is head_class

    def test_tuple_and_dict_outputs_hold_the_same_tensors(self):
        model = self.make_model()
        inputs = self.prepare_inputs(model.config)
        with torch.no_grad():
            as_dict = model(**inputs, return_dict=True)
            as_tuple = model(**inputs, return_dict=False)
        assert isinstance(as_tuple, tuple)
        expected = as_dict.to_tuple()
        assert len(as_tuple) == len(expected)
        for i, (actual, reference) in enumerate(zip(as_tuple, expected)):
            if isinstance(reference, torch.Tensor):
                torch.testing.assert_close(actual, reference, rtol=0, atol=0, msg=f"tuple item {i}")

    def test_batch_matches_one_example_at_a_time(self):
        rtol, atol = self.batch_tolerance
        for name, overrides in self.config_variants.items():
            model = self.make_model(**overrides)
            inputs = self.prepare_inputs(model.config, batch_size=3)
            batched = self.forward(model, inputs)
            for i in range(3):
                single = self.forward(model, self.select_rows(inputs, slice(i, i + 1)))
                rows = {k: v[i : i + 1] for k, v in batched.items()}
                _assert_same(single, rows, rtol, atol, f"{name} row {i}")

    def test_gradient_checkpointing_gives_the_same_gradients(self):
        model = self.make_model().train()
        assert model.supports_gradient_checkpointing
        inputs = self.training_inputs(model.config)

        def gradients() -> dict:
            model.zero_grad()
            torch.manual_seed(0)
            model(**inputs).loss.backward()
            return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

        reference = gradients()
        model.gradient_checkpointing_enable()
        assert model.is_gradient_checkpointing
        checkpointed = gradients()
        model.gradient_checkpointing_disable()
        assert reference.keys() == checkpointed.keys() and len(reference) > 3
        for name in reference:
            torch.testing.assert_close(checkpointed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)

    def test_bfloat16_forward_and_from_pretrained_with_torch_dtype(self, tmp_path):
        model = self.make_model()
        inputs = self.prepare_inputs(model.config)
        reference = self.forward(model, inputs)
        model.save_pretrained(tmp_path)
        loaded = self.model_class.from_pretrained(tmp_path, torch_dtype=torch.bfloat16).eval()
        assert loaded.dtype == torch.bfloat16
        for name, parameter in loaded.named_parameters():
            kept = any(key in name for key in self.float32_parameters)
            assert parameter.dtype == (torch.float32 if kept else torch.bfloat16), name
        for casted in (loaded, model.to(torch.bfloat16)):
            outputs = self.forward(casted, inputs)
            for key, value in reference.items():
                assert torch.isfinite(outputs[key].float()).all(), key
                scale = value.abs().max().item() + 1e-3
                # bfloat16 keeps 8 bits of mantissa: a few percent of the output's scale
                torch.testing.assert_close(outputs[key].float(), value, rtol=0.05, atol=0.05 * scale, msg=key)

    def test_resize_token_embeddings_keeps_the_old_rows(self):
        model = self.make_model()
        old_vocab = model.config.vocab_size
        inputs = self.training_inputs(model.config)
        old_input = model.get_input_embeddings().weight.detach().clone()
        model.resize_token_embeddings(old_vocab + 5)
        assert model.config.vocab_size == old_vocab + 5
        assert model.get_input_embeddings().weight.shape[0] == old_vocab + 5
        torch.testing.assert_close(model.get_input_embeddings().weight[:old_vocab], old_input, rtol=0, atol=0)
        output_embeddings = model.get_output_embeddings()
        if output_embeddings is not None:
            assert output_embeddings.weight.shape[0] == old_vocab + 5
        # the new tokens are usable everywhere a token goes (inputs and labels)
        new_token = old_vocab + 4
        inputs = {
            k: torch.where(v > 2, torch.full_like(v, new_token), v) if k in ("input_ids", "labels") else v
            for k, v in inputs.items()
        }
        with torch.no_grad():
            out = model(**inputs)
        assert out.logits.shape[-1] == old_vocab + 5 and torch.isfinite(out.loss)

    def test_generate_is_the_same_with_and_without_the_cache(self):
        if not self.is_causal_lm:
            pytest.skip(f"{self.model_class.__name__} does not generate text")
        model = self.make_model()
        prompt = self.prepare_inputs(model.config, batch_size=2)["input_ids"][:, :5]
        kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=model.config.pad_token_id)
        with_cache = model.generate(prompt, use_cache=True, **kwargs)
        without_cache = model.generate(prompt, use_cache=False, **kwargs)
        assert with_cache.shape[1] > prompt.shape[1]
        assert with_cache.tolist() == without_cache.tolist()

    def test_ids_out_of_the_vocabulary_raise_an_error_naming_the_vocabulary_size(self):
        model = self.make_model()
        vocab_size = model.config.vocab_size
        for bad_id in (vocab_size, -1):
            inputs = self.prepare_inputs(model.config)
            inputs["input_ids"][1, 2] = bad_id
            message = f"`input_ids` must hold ids from 0 to {vocab_size - 1} (vocab_size={vocab_size}); got {bad_id} at position (1, 2)."
            with pytest.raises(ValueError) as error, torch.no_grad():
                model(**inputs)
            assert str(error.value) == message

    def test_ids_of_any_integer_dtype_give_the_int64_outputs_and_other_dtypes_are_refused(self):
        model = self.make_model()
        inputs = self.prepare_inputs(model.config)
        expected = self.forward(model, inputs)
        for dtype in (torch.int32, torch.int16, torch.uint8):
            outputs = self.forward(model, {**inputs, "input_ids": inputs["input_ids"].to(dtype)})
            _assert_same(outputs, expected, name=str(dtype))
        for dtype in (torch.float32, torch.bool):
            with pytest.raises(ValueError) as error, torch.no_grad():
                model(**{**inputs, "input_ids": inputs["input_ids"].to(dtype)})
            assert str(error.value) == f"`input_ids` must hold integer ids; got dtype {dtype}."

    def test_a_folder_without_its_config_is_refused(self, tmp_path):
        model = self.make_model()
        model_type = model.config.model_type
        # A model type in the folder's name is what transformers falls back on without config.json.
        folder = tmp_path / f"my-{model_type}-checkpoint"
        model.save_pretrained(folder)
        (folder / "config.json").unlink()
        loaders = (self.model_class.from_pretrained, type(model.config).from_pretrained, AutoConfig.from_pretrained)
        for load in (*loaders, AutoModel.from_pretrained, *(auto.from_pretrained for auto in self.auto_classes)):
            with pytest.raises(FileNotFoundError, match=f"{folder} has no config.json"):
                load(folder)
        other = {**model.config.to_dict(), "model_type": "gpt_neox"}
        (folder / "config.json").write_text(json.dumps(other))
        with pytest.raises(ValueError, match=f"model_type 'gpt_neox'; a {type(model.config).__name__} loads only"):
            self.model_class.from_pretrained(folder)

    def test_config_refuses_non_finite_floats_naming_the_field(self):
        config_class = type(self.get_config())
        # The family's float arguments and those of the transformers config it extends (GPT-2's dropouts).
        names = {
            name
            for cls in config_class.__mro__
            if issubclass(cls, PretrainedConfig) and cls is not PretrainedConfig
            for name, parameter in inspect.signature(cls.__init__).parameters.items()
            if type(parameter.default) is float
        }
        assert len(names) >= 4, names
        for name in sorted(names):
            for value in (float("nan"), float("inf"), float("-inf")):
                with pytest.raises(ValueError, match=f"`{name}` must be a finite number"):
                    self.get_config(**{name: value})

    def test_generate_refuses_an_empty_batch(self):
        if not self.is_causal_lm:
            pytest.skip(f"{self.model_class.__name__} does not generate text")
        model = self.make_model()
        prompt = self.prepare_inputs(model.config, batch_size=2)["input_ids"][:0, :5]
        message = r"`generate` needs at least one prompt; got a batch of 0 \(prompts of shape \(0, 5\)\)"
        for kwargs in ({"use_cache": True}, {"use_cache": False}):
            with pytest.raises(ValueError, match=message):
                model.generate(prompt, max_new_tokens=3, do_sample=False, **kwargs)
        with pytest.raises(ValueError, match=message):
            model.generate(input_ids=prompt, max_new_tokens=3)

    def test_trust_remote_code_load_in_a_clean_process_without_hf_reason(self, tmp_path):
        model = self.make_model(seed=2, **self.config_variants[self.remote_code_variant])
        checkpoint = tmp_path / "checkpoint"
        model.save_pretrained(checkpoint)
        inputs = self.prepare_inputs(model.config, batch_size=2)
        torch.save(inputs, tmp_path / "inputs.pt")
        family = ""
        if self.family_outputs is not None:
            family = textwrap.dedent(inspect.getsource(self.family_outputs))
            family += f"\nresult['family'] = {self.family_outputs.__name__}(model, inputs)\n"
        load = f"""
            import torch
            torch.set_num_threads(1)
            import transformers
            model = transformers.{self.remote_auto_class}.from_pretrained({str(checkpoint)!r}, trust_remote_code=True)
            model = model.eval()
            assert type(model).__name__ == {self.model_class.__name__!r}, type(model)
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            inputs = torch.load({str(tmp_path / "inputs.pt")!r})
            with torch.no_grad():
                output = model(**inputs, return_dict=True)

            def plain(value):  # nested outputs as dicts of tensors: nothing of the remote code to unpickle
                if isinstance(value, dict):
                    return {{k: plain(v) for k, v in value.items() if isinstance(v, (dict, torch.Tensor))}}
                return value

            result = {{"output": plain(output)}}
            """
        save = f"torch.save(result, {str(tmp_path / 'out.pt')!r})\n"
        run_without_hf_reason(textwrap.dedent(load) + family + save, cwd=tmp_path)
        remote = torch.load(tmp_path / "out.pt", weights_only=False)
        expected = self.forward(model, inputs)
        _assert_same(self.outputs_to_compare(remote["output"]), expected, *self.reload_tolerance, "trust_remote_code")
        if self.family_outputs is not None:
            _assert_same(remote["family"], self.family_outputs(model, inputs), name="trust_remote_code family")
