"""Spell's ``spell.api`` names that scripts import: the search specs (``spell.api.models``)
and the exceptions (``spell.api.exceptions``)."""
