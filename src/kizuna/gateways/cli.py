"""``kizuna asterix …``, ``kizuna dis …`` and ``kizuna cot …``: thin typer wrappers.

Light to import (typer only); each command imports its gateway inside its body.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _out(text: str) -> None:
    # print(), not rich: JSON lines must reach a pipe unchanged (no wrapping, no markup).
    print(text, flush=False)


def _err(text: str) -> None:
    err_console.print(text, markup=False)


asterix_app = typer.Typer(
    help="ASTERIX (EUROCONTROL) surveillance data: decode, replay, CAT062 out.",
    no_args_is_help=True,
)
dis_app = typer.Typer(
    help="DIS (IEEE 1278.1) Entity State PDUs: decode and send.", no_args_is_help=True
)
cot_app = typer.Typer(
    help="Cursor on Target (TAK): the picture as CoT events to a TAK server.", no_args_is_help=True
)


@asterix_app.command("decode")
def asterix_decode(
    file: Annotated[str, typer.Argument(help="Raw ASTERIX (.raw/.ast/.bin) or pcap/pcapng file.")],
    edition: Annotated[
        list[str] | None,
        typer.Option("--edition", help="Force an edition, CAT=MAJOR.MINOR (e.g. 21=0.26)."),
    ] = None,
) -> None:
    """Print every record as a JSON line; rejections and a summary on stderr (exit 2 if any)."""
    from kizuna.gateways.asterix import decode_command

    code = decode_command(file, edition, _out, _err)
    raise typer.Exit(code)


@asterix_app.command("replay")
def asterix_replay(
    file: Annotated[str, typer.Argument(help="Raw ASTERIX or pcap/pcapng file.")],
    to: Annotated[str, typer.Option("--to", help="Destination HOST:PORT (UDP).")],
    interval: Annotated[float, typer.Option("--interval", help="Seconds between datagrams.")] = 0.0,
) -> None:
    """Send the file's datagrams (each pcap UDP payload, or each datablock) over UDP."""
    from kizuna.gateways.asterix import replay_command

    n, size = replay_command(file, to, interval)
    _err(f"{file}: sent {n} datagrams ({size} bytes) to {to}")


@asterix_app.command("listen")
def asterix_listen(
    bind: Annotated[str, typer.Option("--bind", help="Local HOST:PORT to receive UDP on.")],
    count: Annotated[
        int | None, typer.Option("--count", help="Stop after this many datagrams.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Stop after this many seconds of silence.")
    ] = 10.0,
) -> None:
    """Receive ASTERIX over UDP; print records as JSON lines, rejections on stderr."""
    from kizuna.gateways.asterix import listen_command

    raise typer.Exit(listen_command(bind, count, timeout, _out, _err))


@asterix_app.command("plots")
def asterix_plots(
    file: Annotated[str, typer.Argument(help="Raw ASTERIX or pcap/pcapng file.")],
    sites: Annotated[str, typer.Option("--sites", help="Site table (TOML [[site]] by SAC/SIC).")],
    epoch: Annotated[
        str, typer.Option("--epoch", help="UTC time that t = 0 stands for, e.g. 2026-05-01T07:00Z.")
    ],
    out: Annotated[str, typer.Option("--out", help="plots.parquet to write.")],
    edition: Annotated[
        list[str] | None, typer.Option("--edition", help="Force an edition, CAT=MAJOR.MINOR.")
    ] = None,
) -> None:
    """CAT048/CAT021 reports as plots.parquet (kizuna simulate's schema) for kizuna track."""
    from kizuna.gateways.asterix import plots_command

    plots_command(file, sites, epoch, out, edition, _err)


@asterix_app.command("cat062")
def asterix_cat062(
    recording: Annotated[str, typer.Option("--recording", help="Exercise output directory.")],
    nation: Annotated[str, typer.Option("--nation", help="Whose picture, e.g. JPN.")],
    out: Annotated[str | None, typer.Option("--out", help="Write raw CAT062 here.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Also send to HOST:PORT (UDP).")] = None,
    sac: Annotated[int, typer.Option("--sac", help="System Area Code.")] = 0,
    sic: Annotated[int, typer.Option("--sic", help="System Identification Code.")] = 1,
) -> None:
    """Encode a recorded picture as CAT062 system tracks (every snapshot, in time order)."""
    from kizuna.gateways.asterix import cat062_command

    cat062_command(recording, nation, out, to, sac, sic, _err)


@dis_app.command("decode")
def dis_decode(
    file: Annotated[str, typer.Argument(help="A file of DIS PDUs back to back (.raw).")],
) -> None:
    """Print each Entity State PDU as a JSON line; rejections on stderr (exit 2 if any)."""
    from kizuna.gateways.dis import decode_command

    raise typer.Exit(decode_command(file, _out, _err))


@dis_app.command("send")
def dis_send(
    recording: Annotated[str, typer.Option("--recording", help="Exercise output directory.")],
    nation: Annotated[str, typer.Option("--nation", help="Whose picture, e.g. JPN.")],
    to: Annotated[str, typer.Option("--to", help="Destination HOST:PORT (UDP, DIS is 3000).")],
    site: Annotated[int, typer.Option("--site", help="DIS site number.")] = 1,
    application: Annotated[int, typer.Option("--application", help="DIS application.")] = 1,
    exercise: Annotated[int, typer.Option("--exercise", help="DIS exercise ID.")] = 1,
) -> None:
    """Send a recorded picture as DIS 7 Entity State PDUs over UDP."""
    from kizuna.gateways.dis import send_command

    send_command(recording, nation, to, site, application, exercise, _err)


@cot_app.command("send")
def cot_send(
    recording: Annotated[str, typer.Option("--recording", help="Exercise output directory.")],
    nation: Annotated[str, typer.Option("--nation", help="Whose picture, e.g. JPN.")],
    tak: Annotated[
        str, typer.Option("--tak", help="TAK server: tcp://HOST:PORT or tls://HOST:PORT.")
    ],
    cert: Annotated[str | None, typer.Option("--cert", help="Client certificate (PEM).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Client private key (PEM).")] = None,
    ca: Annotated[
        str | None, typer.Option("--ca", help="CA certificate to verify the server (PEM).")
    ] = None,
    stale: Annotated[
        float, typer.Option("--stale", help="Seconds until an event is stale.")
    ] = 30.0,
    scenario_time: Annotated[
        bool,
        typer.Option("--scenario-time", help="Keep the scenario's UTC times (default: now)."),
    ] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Every snapshot, oldest first (default: the newest).")
    ] = False,
) -> None:
    """Send a recorded picture to a TAK server as Cursor-on-Target events (pytak)."""
    from kizuna.gateways.tak import TlsFiles, send_command

    tls = TlsFiles(cert, key, ca) if cert is not None and key is not None else None
    send_command(recording, nation, tak, tls, stale, scenario_time, _err, every)
