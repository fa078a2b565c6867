# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Names of the files hf-reason writes next to a saved model and into the folder it uploads."""

CARD_NAME = "README.md"
# The card's structured inputs, kept next to a saved model so `push` can re-render the card for
# the final repo id; local only: our upload folder leaves it out, and the leading underscore keeps
# `Trainer.push_to_hub` (ignore_patterns "_*") from uploading it too.
CARD_INPUTS_NAME = "_hf_reason_card.json"
# An ONNX export travels in this subfolder; its report's name is `hf_reason.export.REPORT_NAME`.
ONNX_SUBFOLDER = "onnx"
