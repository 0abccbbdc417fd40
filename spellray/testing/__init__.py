"""Helpers for spellray's own tests and benchmarks (a fake multi-node cluster); never used
by the CLI, the server or the runner."""
