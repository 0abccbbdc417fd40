"""spellray: Spell.run rebuilt on Ray."""

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: `import spellray` in user code stays cheap
    if name in ("Client", "from_environment"):
        from spellray import client

        return getattr(client, name)
    raise AttributeError(name)
