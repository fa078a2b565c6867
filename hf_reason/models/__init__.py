"""Model families. Each sub-package is self-contained (torch + transformers only)."""
