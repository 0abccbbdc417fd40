"""The web console's front end: Jinja2 templates and static files (our CSS and script, and
vendored htmx 2 and uPlot with their licences: no CDN, no build step, works offline). The
pages themselves are served by spellray/server/console/."""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
