"""A search as `spell hyper describe` shows it (the search, then its trials best first), and
`--follow`: the same view, live, until the search and every trial have ended."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from spellray.cli import exit_codes
from spellray.cli.output import console, err, styled_status

if TYPE_CHECKING:
    from rich.console import RenderableType

    from spellray.schemas import HyperSearch, Run

FOLLOW_POLL = 1.0  # seconds between looks at a followed search
# How the tune trial actor stops a trial ASHA judged poor (spellray/tune/trial.py).
EARLY_STOP_REASON = "stopped by the search"


def space(search: HyperSearch) -> str:
    parts = []
    for p in search.params:
        if p.values is not None:
            parts.append(f"{p.name}={','.join(p.values)}")
        else:
            parts.append(f"{p.name}={p.min:g}:{p.max:g}:{p.scale}:{p.type}")
    return " ".join(parts)


class SearchView:
    """A search and its trials, refreshed on demand. A trial that has ended (and its score)
    is fetched once: following a long search asks only about the trials still running."""

    def __init__(self, client: Any, search_id: int) -> None:
        self.client = client
        self.search_id = search_id
        self.search: HyperSearch | None = None
        self.trials: dict[int, tuple[Run, float | None]] = {}

    def refresh(self) -> None:
        self.search = search = self.client.hyper.get(self.search_id)
        for run_id in search.run_ids:
            known = self.trials.get(run_id)
            if known is not None and known[0].status.is_terminal:
                continue
            run = self.client.runs.get(run_id)
            score = self.client.metrics.score(run_id, search.metric, search.aggregation) \
                if search.metric else None
            self.trials[run_id] = (run, score)

    @property
    def ended(self) -> bool:
        from spellray.schemas.hyper import SearchStatus

        assert self.search is not None
        return SearchStatus(self.search.status).is_terminal and all(
            run.status.is_terminal for run, _ in self.trials.values())

    def exit_code(self) -> int:
        """0 when the search completed and so did every trial (a trial --early-stop ended
        counts: the search meant it); else as `spell run` exits for the worst outcome."""
        assert self.search is not None
        statuses = [run.status.value for run, _ in self.trials.values()
                    if not (self.search.early_stop and run.status.value == "stopped"
                            and (run.status_reason or "").startswith(EARLY_STOP_REASON))]
        if self.search.status == "failed" or "failed" in statuses:
            return exit_codes.RUN_FAILED
        if self.search.status != "complete" or any(s != "complete" for s in statuses):
            return exit_codes.RUN_ENDED_BY_USER
        return exit_codes.COMPLETE

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table

        search = self.search
        assert search is not None
        reason = f" ({escape(search.status_reason)})" if search.status_reason else ""
        lines: list[RenderableType] = [
            f"[bold]Search[/]   {search.id} · {search.kind} · "
            f"{styled_status(search.status)}{reason}",
            f"[bold]Command[/]  {escape(search.command)}",
            f"[bold]Params[/]   {escape(space(search))}"]
        if search.metric:
            lines.append(f"[bold]Metric[/]   {escape(search.metric)} ({search.aggregation}, "
                         f"{search.mode}){' · early stop' if search.early_stop else ''}")
        names = [p.name for p in search.params]
        table = Table(box=None, header_style="bold")
        for column in ("RUN", "STATUS", *names, *([search.metric] if search.metric else [])):
            table.add_column(escape(column))
        rows = [(score, run) for run, score in self.trials.values()]
        if search.metric:  # best first; trials without the metric last
            rows.sort(key=lambda r: (r[0] is None, -(r[0] or 0) if search.mode == "max"
                                     else (r[0] or 0)))
        for score, run in rows:
            table.add_row(str(run.id), styled_status(run.status.value),
                          *[escape(run.params.get(n, "")) for n in names],
                          *([f"{score:.6g}" if score is not None else "-"]
                            if search.metric else []))
        return Group(*lines, table)


def describe(client: Any, search_id: int) -> None:
    view = SearchView(client, search_id)
    view.refresh()
    console.print(view.render())


def follow(client: Any, search_id: int) -> int:
    """Show the search live until it and its trials have ended; the exit code for how."""
    from rich.live import Live

    view = SearchView(client, search_id)
    view.refresh()
    try:
        with Live(view.render(), console=console, auto_refresh=False) as live:
            while not view.ended:
                time.sleep(FOLLOW_POLL)
                view.refresh()
                live.update(view.render(), refresh=True)
    except KeyboardInterrupt:
        err.print(f"\nDetached from search {search_id}; it keeps running. Reattach: "
                  f"spell hyper describe {search_id} --follow · stop: spell hyper stop "
                  f"{search_id}")
        return exit_codes.DETACHED
    code = view.exit_code()
    assert view.search is not None
    done = sum(run.status.value == "complete" for run, _ in view.trials.values())
    err.print(f"search {search_id} {styled_status(view.search.status)}: {done} of "
              f"{len(view.trials)} trials complete")
    return code
