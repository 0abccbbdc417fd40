"""`spell`: the command line. Ray is never imported here, and a command's module only when
that command runs (`spell --help` and `spell run` stay fast; see cli/lazy_group.py), and
typer not at all for `spell --help` (cli/root_help.py)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    # httpcore imports trio, when installed, only to detect whether it runs under trio; the
    # CLI never does, and that import costs ~95 ms of every command's start-up.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
    # httpx imports its own command line (click, pygments, rich's progress bars) when it can;
    # without it httpx works the same, and every command starts faster.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    if sys.argv[1:] == ["--help"]:
        from spellray.cli.root_help import root_help

        sys.stdout.write(root_help())
        sys.exit(0)
    import typer

    from spellray.cli.app import app

    try:
        # Not standalone: errors come back here to be printed as one line each.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except KeyboardInterrupt:
        _exit_detached()
    except typer.TyperException as exc:  # usage errors, in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        _exit_detached()
    except Exception as exc:  # ours (one line) or a bug of ours: still one line
        _exit_for(exc)


def _exit_detached() -> None:
    from spellray.cli import exit_codes

    sys.exit(exit_codes.DETACHED)


def _exit_for(exc: Exception) -> None:
    # Imported here, not above: a command that succeeds never pays for them.
    from rich.markup import escape

    from spellray.cli import exit_codes
    from spellray.cli.output import err
    from spellray.errors import NotFound, SpellrayError

    if os.environ.get("SPELLRAY_DEBUG"):
        raise exc
    if isinstance(exc, SpellrayError):
        err.print(f"[red]error:[/] {escape(exc.message)}")  # the message is not markup
        sys.exit(exit_codes.NOT_FOUND if isinstance(exc, NotFound) else exit_codes.ERROR)
    text = " ".join(str(exc).split())[:300]
    err.print(f"[red]error:[/] {escape(f'spell failed unexpectedly: {type(exc).__name__}: ')}"
              f"{escape(text)} (SPELLRAY_DEBUG=1 shows the traceback)")
    sys.exit(exit_codes.ERROR)


if __name__ == "__main__":
    main()
