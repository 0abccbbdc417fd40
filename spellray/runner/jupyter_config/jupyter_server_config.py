"""Jupyter's config for workspaces (runner/jupyter.py adds this folder to
JUPYTER_CONFIG_PATH): Jupyter's token stays out of the pages it serves.

JupyterLab and Notebook 7 write the server's token into each page's config, and their
front-ends then send it as `Authorization: token ...` on every API call. Behind the spellray
server that is wrong twice: the browser would hold a credential only the proxy may send, and
the server's gate, seeing an Authorization header that is no spellray token, refuses the
call (401) instead of checking the browser's workspace cookie. With the token blanked the
front-ends send none; the proxy adds it upstream."""

from typing import Any


def _without_token(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
    page_config["token"] = ""
    return page_config


c = get_config()  # type: ignore[name-defined]  # noqa: F821  (Jupyter's config loader)
c.ServerApp.tornado_settings = {"page_config_hook": _without_token}
