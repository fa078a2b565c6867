"""Model card templates (Jinja, as `huggingface_hub.ModelCard.from_template` reads them).

This folder lives at the repository top level and installs as `hf_reason.model_cards`;
`hf_reason.hub` fills the templates at save and push time.
"""
