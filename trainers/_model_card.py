"""The saving hooks every hf-reason trainer shares: hf-reason's model card, and the model's own class
(not FSDP2's generated one) for what `save_pretrained` writes."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

from torch import nn
from torch.distributed.fsdp import FSDPModule

from hf_reason.hub import write_trainer_model_card


class ModelCardMixin:
    """Writes hf-reason's model card (README.md) next to a final saved model, and when `push_to_hub`
    asks for a card (transformers' / TRL's generic card would replace ours there). Put it first in
    the bases: ``class MyTrainer(ModelCardMixin, Trainer)``. For a model that is not one of
    hf-reason's families the parent trainer's card is written instead.

    A trainer that writes files of its own into checkpoints (state to resume from, never part of a
    shared model) declares them in `training_state_files`, as `fnmatch` patterns; the Hub upload
    (`hf_reason.hub.prepare_upload_folder`) leaves out every file any trainer declares.

    Under FSDP2, saves (final and checkpoints) run `save_pretrained` with the model's own class
    (`own_class`), so that the folder's code files and `auto_map` are the model's.
    """

    training_state_files: tuple[str, ...] = ()

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False):
        super().save_model(output_dir, _internal_call)
        if not _internal_call:  # checkpoints are not cards' business; the final save is
            write_trainer_model_card(self, output_dir)

    def _save(self, output_dir: Optional[str] = None, state_dict=None):
        with own_class(self.model):
            super()._save(output_dir, state_dict)

    def create_model_card(self, *args, **kwargs):
        if write_trainer_model_card(self, self.args.output_dir, **kwargs) is None:
            super().create_model_card(*args, **kwargs)


def training_state_files() -> tuple[str, ...]:
    """The `training_state_files` patterns of every trainer class built on `ModelCardMixin` (hf-reason's
    own and users' subclasses defined so far), sorted and without repeats."""
    patterns, pending = set(), [ModelCardMixin]
    while pending:
        cls = pending.pop()
        patterns.update(cls.training_state_files)
        pending.extend(cls.__subclasses__())
    return tuple(sorted(patterns))


@contextmanager
def own_class(model: nn.Module) -> Iterator[nn.Module]:
    """Gives an FSDP2-sharded `model` back its own class for the duration of the block.

    `fully_shard` turns the model's class into a generated subclass, `FSDP<Name>`, defined in torch's
    `_fsdp_init` module. transformers strips the prefix from the config's `architectures`, but
    `save_pretrained` still copies the class's module and its imports as the model's code (torch's
    `_fsdp_*.py` files instead of `modeling_<family>.py`) and points `auto_map` at
    `_fsdp_init.FSDP<Name>`, so the saved folder no longer loads with `trust_remote_code=True`. A save
    receives the gathered weights as a state dict and runs no forward, so the plain class serves it.
    Anything but an FSDP2 module passes through unchanged.
    """
    sharded_class = type(model)
    if not isinstance(model, FSDPModule):
        yield model
        return
    model.__class__ = next(c for c in sharded_class.__mro__ if not issubclass(c, FSDPModule))
    try:
        yield model
    finally:
        model.__class__ = sharded_class
