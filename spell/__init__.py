"""Spell's own Python API (``spell.client``, ``spell.metrics``, ``spell.serving``), on top of
spellray's SDK, so scripts written for Spell run unchanged. See docs/spell-api.md."""
