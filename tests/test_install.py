"""What the install brings into every Ray and Jupyter process.

jsonschema's format-nongpl extra (asked for by Jupyter's jupyter-events) brought, from
jsonschema 4.25, rfc3987-syntax, which builds a Lark Earley parser when jsonschema is
imported: about 1 s of CPU in each Ray worker, job supervisor and Jupyter server. The pin in
pyproject.toml keeps it out; this test fails if a dependency brings it back.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SLOW_AT_IMPORT = ("rfc3987_syntax", "lark")


@pytest.mark.parametrize("module", ["ray", "jupyter_server.serverapp"])
def test_import_does_not_build_a_grammar(module: str) -> None:
    probe = (f"import sys, {module}; "
             f"print(','.join(m for m in {SLOW_AT_IMPORT!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    # The probe ran the import: it printed its (possibly empty) line.
    assert result.stdout.endswith("\n")
    assert result.stdout.strip() == "", (
        f"`import {module}` loads {result.stdout.strip()}: a dependency brought "
        "rfc3987-syntax back (see pyproject.toml's jsonschema pin)")
