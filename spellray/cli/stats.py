"""spell stats: a run's hardware stats in the terminal, the latest value and a sparkline over
the run for each column; ``-f`` prints each new sample as it comes, until the run ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from spellray.cli import exit_codes
from spellray.cli.metrics import sparkline
from spellray.cli.output import console, duration, err
from spellray.cli.runs import _client

if TYPE_CHECKING:
    from rich.table import Table

    from spellray.schemas import StatsSample

Reading = Callable[["StatsSample"], float | None]


def _size(value: float | None, unit: str = "B") -> str:
    """Bytes in decimal units (MLflow's megabytes are 10^6 bytes too)."""
    if value is None:
        return "-"
    for prefix in ("", "k", "M", "G", "T"):
        if abs(value) < 1000 or prefix == "T":
            return f"{value:.0f} {prefix}{unit}" if not prefix else f"{value:.1f} {prefix}{unit}"
        value /= 1000
    return "-"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _columns(samples: Sequence[StatsSample]) -> list[tuple[str, Reading, Callable]]:
    """(name, how to read it from a sample, how to show it) for every column the samples
    have: the GPU ones only where the run had GPUs."""
    columns: list[tuple[str, Reading, Callable]] = [
        ("cpu (process tree)", lambda s: s.cpu_percent, _percent),
        ("memory RSS (process tree)", lambda s: s.memory_rss_bytes, _size),
        ("node cpu", lambda s: s.node_cpu_percent, _percent),
        ("node memory used", lambda s: s.node_memory_used_bytes, _size),
        ("node memory total", lambda s: s.node_memory_total_bytes, _size),
        ("network in", lambda s: s.network_receive_bytes_per_second, _rate),
        ("network out", lambda s: s.network_transmit_bytes_per_second, _rate),
        ("disk read", lambda s: s.disk_read_bytes_per_second, _rate),
        ("disk write", lambda s: s.disk_write_bytes_per_second, _rate),
    ]
    gpu_indexes = sorted({g.index for s in samples for g in s.gpus})
    for index in gpu_indexes:
        def gpu(sample: StatsSample, field: str, index: int = index) -> float | None:
            found = next((g for g in sample.gpus if g.index == index), None)
            return getattr(found, field) if found is not None else None

        columns += [
            (f"gpu {index} utilization", lambda s, g=gpu: g(s, "utilization_percent"),
             _percent),
            (f"gpu {index} memory used", lambda s, g=gpu: g(s, "memory_used_bytes"), _size),
            (f"gpu {index} memory total", lambda s, g=gpu: g(s, "memory_total_bytes"), _size),
            (f"gpu {index} temperature", lambda s, g=gpu: g(s, "temperature_celsius"),
             lambda v: "-" if v is None else f"{v:.0f} °C"),
            (f"gpu {index} power", lambda s, g=gpu: g(s, "power_watts"),
             lambda v: "-" if v is None else f"{v:.0f} W"),
            (f"gpu {index} power limit", lambda s, g=gpu: g(s, "power_limit_watts"),
             lambda v: "-" if v is None else f"{v:.0f} W"),
        ]
    return columns


def _rate(value: float | None) -> str:
    return "-" if value is None else _size(value) + "/s"


def _ranks(samples: Sequence[StatsSample]) -> list[int | None]:
    return sorted({s.rank for s in samples}, key=lambda r: -1 if r is None else r)


def summary_table(samples: Sequence[StatsSample]) -> Table:
    """Per rank (a single run has one, unnamed), each column's latest value and trend."""
    from rich.table import Table

    ranks = _ranks(samples)
    table = Table(box=None, header_style="bold")
    if ranks != [None]:
        table.add_column("RANK", justify="right")
    for column in ("STAT", "LATEST", "MAX", "TREND"):
        table.add_column(column, no_wrap=True,
                         justify="right" if column in ("LATEST", "MAX") else "left")
    for rank in ranks:
        own = [s for s in samples if s.rank == rank]
        for name, read, show in _columns(own):
            values = [v for v in (read(s) for s in own) if v is not None]
            latest = next((v for v in (read(s) for s in reversed(own)) if v is not None), None)
            cells = [name, show(latest), show(max(values) if values else None),
                     sparkline(values)]
            table.add_row(*([str(rank)] if ranks != [None] else []), *cells)
    return table


def _header(run_id: int, status: str, samples: Sequence[StatsSample]) -> str:
    start, end = samples[0].time - samples[0].span_seconds, samples[-1].time
    return (f"run {run_id} ({status}): {len(samples)} samples from "
            f"{_clock(start)} to {_clock(end)} ({duration(end - start)})")


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%H:%M:%S")


ROW_COLUMNS = ("TIME", "RANK", "CPU", "RSS", "NODE CPU", "NODE MEM", "NET IN", "NET OUT",
               "DISK R", "DISK W", "GPUS")


def sample_row(sample: StatsSample) -> str:
    """One sample on one line, for -f."""
    gpus = "  ".join(f"gpu{g.index} {_percent(g.utilization_percent)} "
                     f"{_size(g.memory_used_bytes)} "
                     f"{'-' if g.temperature_celsius is None else f'{g.temperature_celsius:.0f}C'} "
                     f"{'-' if g.power_watts is None else f'{g.power_watts:.0f}W'}"
                     for g in sample.gpus)
    cells = (_clock(sample.time), "-" if sample.rank is None else str(sample.rank),
             _percent(sample.cpu_percent), _size(sample.memory_rss_bytes),
             _percent(sample.node_cpu_percent), _size(sample.node_memory_used_bytes),
             _rate(sample.network_receive_bytes_per_second),
             _rate(sample.network_transmit_bytes_per_second),
             _rate(sample.disk_read_bytes_per_second),
             _rate(sample.disk_write_bytes_per_second), gpus or "-")
    return _line(cells)


def _line(cells: Sequence[str]) -> str:
    widths = (8, 4, 7, 9, 8, 9, 11, 11, 11, 11, 0)
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def stats(
    run_id: Annotated[int, typer.Argument(help="Run number")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print each new sample until the run ends")] = False,  # noqa: E501
) -> int:
    """Show a run's hardware stats (CPU, memory, network, disk, GPUs): latest values and a
    sparkline each; -f follows.

    -f prints each new sample as it comes, until the run ends."""
    client = _client()
    if follow:
        client.runs.get(run_id)  # an unknown run: its one-line error, before the header
        console.print(_line(ROW_COLUMNS), style="bold", markup=False, highlight=False)
        for sample in client.runs.stats(run_id, follow=True):
            console.print(sample_row(sample), markup=False, highlight=False)
        return exit_codes.COMPLETE
    chunk = client.runs.stats_chunk(run_id)
    status, samples = chunk.status, list(chunk.samples)
    while chunk.samples:  # a long run's samples may come in more than one answer
        chunk = client.runs.stats_chunk(run_id, chunk.offset)
        samples += chunk.samples
    if not samples:
        err.print(f"run {run_id} has no hardware stats (yet): its runner samples every "
                  "SPELLRAY_STATS_INTERVAL_SECONDS (default 5) while its command runs")
        return exit_codes.COMPLETE
    console.print(_header(run_id, status.value, samples), highlight=False, markup=False)
    console.print(summary_table(samples))
    return exit_codes.COMPLETE


def register(app: typer.Typer) -> None:
    app.command()(stats)
