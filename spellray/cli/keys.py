"""spell keys add | generate | list | rm: your public SSH keys, which a cluster's head takes
for the tunnel to its spellray server (and nothing else)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli.output import ago, console

if TYPE_CHECKING:
    from spellray.schemas import SshKeyAdded
    from spellray.ssh_keys import PublicKey

app = typer.Typer(help="Your public SSH keys for a cluster's tunnel: add, generate, list, rm.",
                  no_args_is_help=True)

DEFAULT_FILES = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")
TitleOption = Annotated[str | None, typer.Option("--title", "-t", help="a name you will know it by (default: the key's comment, else this computer's name)")]  # noqa: E501


def _read(file: str | None) -> tuple[str, str]:
    """The key file's text and how to name it in an error: FILE, '-' (standard input), or
    the first of ~/.ssh/id_ed25519.pub and ~/.ssh/id_rsa.pub that exists."""
    from spellray.errors import InvalidInput

    if file == "-":
        return sys.stdin.read(), "standard input"
    if file is None:
        found = [Path(f).expanduser() for f in DEFAULT_FILES if Path(f).expanduser().exists()]
        if not found:
            raise InvalidInput(f"no public key at {' or '.join(DEFAULT_FILES)}: give its file "
                               "(spell keys add PATH.pub), or make one with spell keys generate")
        path = found[0]
    else:
        path = Path(file).expanduser()
    try:
        return path.read_text(errors="replace"), str(path)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}; give a public key "
                           "file, such as ~/.ssh/id_ed25519.pub") from None


def _parsed(text: str, where: str) -> PublicKey:
    from spellray.errors import InvalidInput
    from spellray.ssh_keys import BadKey, parse_public_key

    try:
        return parse_public_key(text)
    except BadKey as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def _title(title: str | None, key: PublicKey | None) -> str:
    from spellray.errors import InvalidInput
    from spellray.ssh_keys import BadKey, check_title, default_title

    try:
        return check_title(title.strip()) if title is not None else default_title(key)
    except BadKey as exc:
        raise InvalidInput(str(exc)) from None


def _show(added: SshKeyAdded) -> None:
    console.print(f"added key {added.title!r} ({added.key_type} {added.fingerprint})",
                  markup=False)
    if added.installed_in:
        console.print(f"installed in {added.installed_in} on the server's machine: it opens "
                      "the tunnel to the server, and nothing else", markup=False)
    else:
        console.print("this server writes no authorized_keys (SPELLRAY_AUTHORIZED_KEYS_FILE "
                      "is unset, as on a laptop); a cluster's head takes it", markup=False)


@app.command()
def add(
    file: Annotated[str | None, typer.Argument(help="the public key file, '-' for standard input (default: ~/.ssh/id_ed25519.pub, else ~/.ssh/id_rsa.pub)")] = None,  # noqa: E501
    title: TitleOption = None,
) -> None:
    """Add a public SSH key (the .pub file, never the private key)."""
    from spellray.client import from_environment

    text, where = _read(file)
    key = _parsed(text, where)
    _show(from_environment().keys.add(key.line, title=_title(title, key)))


def _key_path(title: str) -> Path:
    """SPELLRAY_HOME/keys/<title, made a file name>: a private key of its own per title."""
    import re

    from spellray.errors import Conflict
    from spellray.settings import get_settings

    name = re.sub(r"[^A-Za-z0-9._@+-]+", "-", title)
    path = get_settings().home / "keys" / f"id_ed25519_{name}"
    if path.exists() or Path(f"{path}.pub").exists():
        raise Conflict(f"{path} exists already; choose another --title")
    return path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start; never over a file that is there."""
    import os

    from spellray.errors import Conflict

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise Conflict(f"{path} exists already; choose another --title") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@app.command()
def generate(title: TitleOption = None) -> None:
    """Make an ed25519 key pair, keep the private key here (mode 0600), add the public one."""
    from spellray.client import from_environment
    from spellray.ssh_keys import generate_ed25519

    name = _title(title, None)
    path = _key_path(name)
    pub = Path(f"{path}.pub")
    private, public = generate_ed25519(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_new(path, private, 0o600)
    try:
        _write_new(pub, (public + "\n").encode(), 0o644)
        added = from_environment().keys.add(public, title=name)
    except BaseException:
        path.unlink(missing_ok=True)  # nothing registered: keep no key that opens nothing
        pub.unlink(missing_ok=True)
        raise
    console.print(f"wrote the private key to {path} (mode 0600) and the public one to "
                  f"{pub}", markup=False)
    _show(added)
    console.print(f"use it with: ssh -i {path} -N -L PORT:127.0.0.1:SERVER_PORT USER@HEAD",
                  markup=False)


@app.command("list")
def list_keys() -> None:
    """Your keys: title, fingerprint (SHA256, as ssh-keygen -l prints it), created. An
    admin sees everyone's, with a USER column."""
    from rich.table import Column, Table

    from spellray.client import from_environment

    client = from_environment()
    keys = client.keys.list()
    users = {k.user for k in keys}
    whose = len(users) > 1 or (users and users != {client.whoami().user})
    # The fingerprint whole, on one line: it is what a person compares with ssh-keygen -l.
    width = max((len(k.fingerprint) for k in keys), default=11)
    table = Table(*(["USER"] if whose else []), "TITLE", "TYPE",
                  Column("FINGERPRINT", no_wrap=True, min_width=width), "CREATED", box=None)
    for key in keys:
        table.add_row(*([key.user] if whose else []), key.title, key.key_type,
                      key.fingerprint, ago(key.created_at))
    console.print(table)


@app.command("rm")
def remove(
    title: Annotated[str | None, typer.Argument(help="the key's title (spell keys list)")] = None,
    title_option: Annotated[str | None, typer.Option("--title", help="the same, as older Spell took it")] = None,  # noqa: E501
    user: Annotated[str | None, typer.Option("--user", help="admins: another user's key")] = None,
) -> None:
    """Remove a key: the head refuses it from the next connection on."""
    from spellray.client import from_environment
    from spellray.errors import InvalidInput

    if (title is None) == (title_option is None):
        raise InvalidInput("name one key: spell keys rm TITLE (or --title TITLE)")
    chosen = title if title is not None else title_option
    assert chosen is not None
    from_environment().keys.remove(chosen, user=user)
    whose = f"{user}'s " if user else ""
    console.print(f"removed {whose}key {chosen!r}", markup=False)
