"""The model-card hook every hf-reason trainer shares."""

from typing import Optional

from hf_reason.hub import write_trainer_model_card


class ModelCardMixin:
    """Writes hf-reason's model card (README.md) next to a final saved model, and when `push_to_hub`
    asks for a card (transformers' / TRL's generic card would replace ours there). Put it first in
    the bases: ``class MyTrainer(ModelCardMixin, Trainer)``. For a model that is not one of
    hf-reason's families the parent trainer's card is written instead.

    A trainer that writes files of its own into checkpoints (state to resume from, never part of a
    shared model) declares them in `training_state_files`, as `fnmatch` patterns; the Hub upload
    (`hf_reason.hub.prepare_upload_folder`) leaves out every file any trainer declares.
    """

    training_state_files: tuple[str, ...] = ()

    def save_model(self, output_dir: Optional[str] = None, _internal_call: bool = False):
        super().save_model(output_dir, _internal_call)
        if not _internal_call:  # checkpoints are not cards' business; the final save is
            write_trainer_model_card(self, output_dir)

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
