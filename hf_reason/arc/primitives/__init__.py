"""The DSL's primitives, one module per family; importing this package registers them all.

The registration order is the search's order among primitives of one size, so the cheap and common
families come first.
"""

# isort: off
from . import geometry  # noqa: F401
from . import colour  # noqa: F401
from . import objects  # noqa: F401
from . import patterns  # noqa: F401
# isort: on
