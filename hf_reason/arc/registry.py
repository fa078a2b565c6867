"""The DSL's types and primitive registry (kept apart from the primitives so that they can register
themselves without importing the program machinery of :mod:`hf_reason.arc.dsl`).

Values are of five types: ``Grid`` (a 2-D ``numpy`` array of colours 0..9, sides 1..30),
``Objects`` (an :class:`~hf_reason.arc.objects.ObjectSet`: objects with the grid they come from),
``Object`` (one :class:`~hf_reason.arc.objects.ArcObject`), ``Int`` and ``Colour``. A primitive
takes values of given types and constant parameters drawn from finite domains; a domain is a tuple
of constants or one of the names in ``TASK_DOMAINS``, resolved per task from the colours of its
grids (so the search only tries colours that occur).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional, Union


__all__ = [
    "ARC_TYPES",
    "COLOUR",
    "GRID",
    "INT",
    "OBJECT",
    "OBJECTS",
    "PRIMITIVES",
    "TASK_DOMAINS",
    "Param",
    "Primitive",
    "primitive",
    "register_inverse",
]

GRID, OBJECTS, OBJECT, INT, COLOUR = "Grid", "Objects", "Object", "Int", "Colour"
ARC_TYPES = (GRID, OBJECTS, OBJECT, INT, COLOUR)
# Per-task domains: colours of the training inputs, of the training outputs, and of both.
TASK_DOMAINS = ("input_colours", "output_colours", "colours")


@dataclass(frozen=True)
class Param:
    """A constant parameter: its name and its domain (a tuple of values, a name from ``TASK_DOMAINS``,
    or ``None`` for a parameter the search never enumerates but a fitter sets)."""

    name: str
    domain: Union[tuple, str, None]


@dataclass(frozen=True)
class Primitive:
    """
    A DSL primitive: a pure function of typed values and constant parameters.

    Args:
        name (`str`): the name programs print and parse.
        fn (`Callable`): ``fn(*values, **params)``; returns the result, or ``None`` when it does not
            apply (no object, a shape that does not divide, ...). It never mutates its inputs.
        arg_types (`tuple[str, ...]`): the types of the values it takes.
        return_type (`str`): the type of its result.
        params (`tuple[Param, ...]`): its constant parameters.
        cost (`int`): the size it adds to a program: 1, or 0 for a view of a value that changes nothing
            by itself (finding the objects of a grid).
        inverse (`Callable`, *optional*): ``inverse(output, **params)`` -> the input that gives ``output``
            (None when none does); lets the search's last step look its input up instead of trying
            every value.
    """

    name: str
    fn: Callable[..., Any]
    arg_types: tuple
    return_type: str
    params: tuple = ()
    cost: int = 1
    inverse: Optional[Callable[..., Any]] = None

    @property
    def doc(self) -> str:
        """The first paragraph of the function's docstring, on one line."""
        paragraph = (self.fn.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(line.strip() for line in paragraph.splitlines())


PRIMITIVES: dict[str, Primitive] = {}


def primitive(return_type: str, *arg_types: str, cost: int = 1, **domains) -> Callable:
    """Registers the decorated function as a primitive: ``@primitive(GRID, GRID, k=(1, 2))`` declares a
    ``Grid -> Grid`` function with a parameter ``k`` in ``(1, 2)``. The registration order is the
    search's order among primitives of the same size."""
    for type_name in (return_type, *arg_types):
        if type_name not in ARC_TYPES:
            raise ValueError(f"unknown DSL type {type_name!r}; expected one of {ARC_TYPES}")
    for name, domain in domains.items():
        if isinstance(domain, str) and domain not in TASK_DOMAINS:
            raise ValueError(f"parameter {name}: domain {domain!r} must be a tuple or one of {TASK_DOMAINS}")

    def register(fn: Callable) -> Callable:
        if fn.__name__ in PRIMITIVES:
            raise ValueError(f"primitive {fn.__name__!r} is registered twice")
        params = tuple(Param(name, domain) for name, domain in domains.items())
        PRIMITIVES[fn.__name__] = Primitive(fn.__name__, fn, tuple(arg_types), return_type, params, cost)
        return fn

    return register


def register_inverse(name: str) -> Callable:
    """Registers the decorated ``fn(output, **params) -> input or None`` as the inverse of primitive
    ``name`` (it must give back an input from which the primitive makes exactly ``output``)."""

    def register(fn: Callable) -> Callable:
        if name not in PRIMITIVES:
            raise ValueError(f"register_inverse: no primitive {name!r}")
        PRIMITIVES[name] = dataclasses.replace(PRIMITIVES[name], inverse=fn)
        return fn

    return register
