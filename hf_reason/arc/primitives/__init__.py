"""The DSL's primitives, one module per family; importing this package registers them all."""

from . import geometry, colour, objects, patterns  # noqa: F401  (registration order = search order)
