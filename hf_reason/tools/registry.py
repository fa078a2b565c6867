# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""The tool registry: typed tools with JSON-schema arguments, calls parsed from model text.

A call is written the way reports write it (docs/curated_dataset.md), one line::

    Tool: calculator({"expression": "4213 * 512"})

and its result comes back on the next line as ``Result: 2157056`` (or ``Result: error: ...``).
`ToolRegistry.call` never raises for what the model wrote: an unknown tool, arguments that do not
match the schema, or a tool that fails all come back as a `ToolResult` whose `error` says why, so
generation can hand the message to the model and go on.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional

import jsonschema


__all__ = [
    "RESULT_PREFIX",
    "TOOL_PREFIX",
    "Tool",
    "ToolCallError",
    "ToolRegistry",
    "ToolResult",
    "format_tool_call",
    "parse_tool_call",
]

TOOL_PREFIX = "Tool:"
RESULT_PREFIX = "Result:"
_CALL_RE = re.compile(r"^[ \t]*([A-Za-z_][\w.]*)[ \t]*\((.*)\)[ \t]*$", re.DOTALL)


class ToolCallError(ValueError):
    """A call that cannot be run: malformed text, an unknown tool or arguments the schema rejects."""


@dataclasses.dataclass(frozen=True)
class Tool:
    """One tool.

    Args:
        name (`str`): what calls name it by (a Python identifier).
        description (`str`): one line for prompts and documentation.
        parameters (`dict`): the JSON schema of the arguments object (``"type": "object"``).
        function (`Callable[..., str]`): called with the validated arguments as keywords; returns the
            result text. Exceptions it raises become the call's error message.
    """

    name: str
    description: str
    parameters: dict
    function: Callable[..., str]

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z_]\w*", self.name):
            raise ValueError(f"Tool `name` must be an identifier, got {self.name!r}")
        if self.parameters.get("type") != "object":
            raise ValueError(f'Tool {self.name!r}: `parameters` must be a JSON schema with "type": "object"')
        jsonschema.Draft202012Validator.check_schema(self.parameters)

    @property
    def required(self) -> set[str]:
        return set(self.parameters.get("required", ()))

    @property
    def optional(self) -> set[str]:
        return set(self.parameters.get("properties", {})) - self.required

    def schema(self) -> dict:
        """The OpenAI / transformers chat-template form of the tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclasses.dataclass
class ToolResult:
    """What one call gave: `output` on success, `error` (a message for the model) otherwise."""

    name: str
    arguments: Optional[dict]
    output: Optional[str] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The text spliced after the call (without the ``Result:`` prefix)."""
        return self.output if self.ok else f"error: {self.error}"


def parse_tool_call(text: str) -> tuple[str, dict]:
    """Reads ``name({json arguments})`` (an optional leading ``Tool:`` is dropped).

    Raises:
        ToolCallError: when the text is not a call or the arguments are not a JSON object.
    """
    text = text.strip()
    if text.startswith(TOOL_PREFIX):
        text = text[len(TOOL_PREFIX) :]
    match = _CALL_RE.fullmatch(text)
    if not match:
        raise ToolCallError(f'expected name({{"argument": value}}), got {text[:80]!r}')
    raw = match.group(2).strip()
    try:
        arguments = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ToolCallError(f"arguments of {match.group(1)} are not JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(arguments, dict):
        raise ToolCallError(f"arguments of {match.group(1)} must be a JSON object, got {type(arguments).__name__}")
    return match.group(1), arguments


def format_tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """The call line, ``Tool: name({...})``, as `parse_tool_call` reads it."""
    return f"{TOOL_PREFIX} {name}({json.dumps(dict(arguments), ensure_ascii=False)})"


class ToolRegistry:
    """Named tools; validates and runs calls.

    Args:
        tools (iterable of [`Tool`], *optional*): the tools to start with.
        max_output_chars (`int`): results longer than this are cut (with a note) so a tool cannot
            flood the model's context.
    """

    def __init__(self, tools: Iterable[Tool] = (), max_output_chars: int = 2000):
        self._tools: dict[str, Tool] = {}
        self.max_output_chars = max_output_chars
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def names(self) -> list[str]:
        return list(self._tools)

    def signatures(self) -> dict[str, tuple[set, set]]:
        """name -> (required arguments, optional arguments), the shape of `DEFAULT_TOOLS`."""
        return {name: (tool.required, tool.optional) for name, tool in self._tools.items()}

    def schemas(self) -> list[dict]:
        return [tool.schema() for tool in self._tools.values()]

    def check(self, name: str, arguments: Any) -> None:
        """Raises `ToolCallError` naming the tool and the failing argument when the call is invalid."""
        if name not in self._tools:
            raise ToolCallError(f"unknown tool {name!r}; known: {sorted(self._tools)}")
        validator = jsonschema.Draft202012Validator(self._tools[name].parameters)
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise ToolCallError(f"{name}: `{where}`: {error.message}")

    def call(self, name: str, arguments: Any) -> ToolResult:
        """Runs one call; every failure comes back as `ToolResult.error`, never as an exception."""
        try:
            self.check(name, arguments)
        except ToolCallError as exc:
            return ToolResult(name, arguments if isinstance(arguments, dict) else None, error=str(exc))
        try:
            output = str(self._tools[name].function(**arguments))
        except Exception as exc:  # the model sees the message; a tool bug must not end generation
            return ToolResult(name, arguments, error=f"{type(exc).__name__}: {exc}")
        if len(output) > self.max_output_chars:
            output = output[: self.max_output_chars] + f" ... [cut at {self.max_output_chars} characters]"
        return ToolResult(name, arguments, output=output)

    def call_text(self, text: str) -> ToolResult:
        """Parses ``name({...})`` and runs it (`ToolResult.error` for a malformed call)."""
        try:
            name, arguments = parse_tool_call(text)
        except ToolCallError as exc:
            return ToolResult(name="", arguments=None, error=str(exc))
        return self.call(name, arguments)
