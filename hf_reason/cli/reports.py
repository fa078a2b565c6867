# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The reports `hf-reason eval-reports` scores, checked line by line before any scoring starts.

A report is `{"task_id"?, "completion", "prompt"?, "introspection"?}`; `introspection` is what
`introspect(...).to_json()` writes: a list of `{"position", "token", "attended": [{"token", "position",
"layer", "head", "weight"}], "num_layers"?}` records, the fields `ReportEvaluator` reads.
"""

from typing import Any

from .inputs import CLIError, check_object, check_string, describe_value


def check_report(value: Any, where: str) -> dict:
    """`value` as a report, or `CLIError` naming the line (`where`) and the field that is wrong."""
    report = check_object(value, where, "a report with `completion`")
    check_string(report, "completion", where, required=True)
    for key in ("task_id", "prompt"):
        check_string(report, key, where)
    introspection = report.get("introspection")
    if introspection is not None:
        _check_introspection(introspection, where)
    return report


def _check_int(record: dict, key: str, where: str, label: str, *, required: bool = True) -> None:
    value = record.get(key)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        got = "nothing" if key not in record else describe_value(value)
        raise CLIError(f"{where}: `{label}.{key}` must be an integer >= 0, got {got}.")


def _check_introspection(introspection: Any, where: str) -> None:
    if not isinstance(introspection, list):
        raise CLIError(
            f"{where}: `introspection` must be a list of records (introspect(...).to_json()), "
            f"got {describe_value(introspection)}."
        )
    for i, record in enumerate(introspection):
        label = f"introspection[{i}]"
        if not isinstance(record, dict):
            raise CLIError(f"{where}: `{label}` must be an object, got {describe_value(record)}.")
        _check_int(record, "position", where, label)
        _check_int(record, "num_layers", where, label, required=False)
        attended = record.get("attended", [])
        if not isinstance(attended, list):
            raise CLIError(f"{where}: `{label}.attended` must be a list, got {describe_value(attended)}.")
        for j, entry in enumerate(attended):
            entry_label = f"{label}.attended[{j}]"
            if not isinstance(entry, dict):
                raise CLIError(f"{where}: `{entry_label}` must be an object, got {describe_value(entry)}.")
            for key in ("position", "layer", "head"):
                _check_int(entry, key, where, entry_label)
            token = entry.get("token")
            if isinstance(token, bool) or not isinstance(token, (str, int)):
                got = "nothing" if "token" not in entry else describe_value(token)
                raise CLIError(f"{where}: `{entry_label}.token` must be a string or a token id, got {got}.")
            weight = entry.get("weight", 0.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
                raise CLIError(f"{where}: `{entry_label}.weight` must be a number, got {describe_value(weight)}.")
