"""The ``kizuna`` command line.

Each command is a thin wrapper: it parses options, calls the library, and prints. Heavy imports
happen inside the command so ``kizuna --help`` stays fast. User errors (:class:`KizunaError`)
become one message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from kizuna import __version__
from kizuna.errors import KizunaError

app = typer.Typer(
    name="kizuna",
    help="Kizuna (絆): alliance air and missile defence picture — simulate, track, share, warn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True)
    ] = False,
) -> None:
    if version:
        console.print(f"kizuna {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())


def main() -> None:
    """Entry point: run the typer app, turning user errors into clear messages."""
    try:
        app()  # standalone: click handles usage errors (exit 2), --help and typer.Exit
    except KizunaError as exc:
        # Plain text (no rich markup) so file paths with brackets print as they are.
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)


# ---------------------------------------------------------------------------------------------
# Commands. Keep each one a thin wrapper; put the work in the library.
# ---------------------------------------------------------------------------------------------


@app.command()
def validate(
    scenario: Annotated[str, typer.Argument(help="Scenario TOML file.")],
) -> None:
    """Check a scenario file: a one-line summary (exit 0) or every problem, one a line (exit 2)."""
    from kizuna.errors import EXIT_BAD_INPUT, InputError
    from kizuna.scenario import load_scenario

    try:
        loaded = load_scenario(scenario)
    except InputError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        n = len(exc.problems)
        err_console.print(
            f"{scenario}: {n} problem{'s' if n != 1 else ''}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_BAD_INPUT) from None
    console.print(
        f"{scenario}: OK — {loaded.summary()}", highlight=False, markup=False, soft_wrap=True
    )


@app.command()
def simulate(
    scenario: Annotated[str, typer.Argument(help="Scenario TOML file.")],
    out: Annotated[
        str, typer.Option("--out", help="Output directory (truth.parquet, plots.parquet).")
    ] = "out/simulate",
    truth_interval: Annotated[
        float, typer.Option("--truth-interval", help="Truth sampling interval, seconds.")
    ] = 1.0,
) -> None:
    """Simulate a scenario's truth and sensors; write truth and plots as Parquet."""
    from kizuna.sim.output import run_command

    run_command(scenario, out, truth_interval, console)


@app.command()
def track(
    detections: Annotated[
        str, typer.Argument(help="Detections .parquet/.csv (time,x,y[,z] m) or plots.parquet.")
    ],
    out: Annotated[str, typer.Option("--out", help="Output tracks Parquet file.")],
    sigma: Annotated[
        float | None, typer.Option("--sigma", help="Measurement std per axis, m (if no sx/sy).")
    ] = None,
    q: Annotated[float, typer.Option("--q", help="Process noise PSD, m²/s³.")] = 1.0,
    pd: Annotated[float, typer.Option("--pd", help="Probability of detection.")] = 0.9,
    clutter_density: Annotated[
        float | None,
        typer.Option("--clutter-density", help="False alarms per m² (2-D) or m³ (3-D)."),
    ] = None,
    gate: Annotated[float, typer.Option("--gate", help="Gate probability.")] = 0.999,
    confirm: Annotated[str, typer.Option("--confirm", help="M-of-N confirmation, M/N.")] = "3/4",
    delete_after: Annotated[
        int, typer.Option("--delete-after", help="Delete after this many consecutive misses.")
    ] = 5,
    association: Annotated[
        str, typer.Option("--association", help="gnn or jpda (cheap JPDA).")
    ] = "gnn",
    initial_velocity_std: Annotated[
        float, typer.Option("--initial-velocity-std", help="New-track velocity std, m/s.")
    ] = 300.0,
) -> None:
    """Track detections scan by scan; write one row per confirmed track per scan."""
    from kizuna.track.detections_io import run_command as run_track

    run_track(
        detections,
        out,
        sigma=sigma,
        process_noise_q=q,
        pd=pd,
        clutter_density=clutter_density,
        gate=gate,
        confirm=confirm,
        delete_after=delete_after,
        association=association,
        initial_velocity_std=initial_velocity_std,
        console=console,
    )


_TakCertOpt = Annotated[
    str | None, typer.Option("--tak-cert", help="Client certificate (PEM) for a tls:// --tak.")
]
_TakKeyOpt = Annotated[
    str | None, typer.Option("--tak-key", help="Client private key (PEM) for a tls:// --tak.")
]
_TakCaOpt = Annotated[
    str | None, typer.Option("--tak-ca", help="CA (PEM) that signed the TAK server's cert.")
]


def _tak_tls(cert: str | None, key: str | None, ca: str | None) -> object:
    """TlsFiles from --tak-cert/--tak-key/--tak-ca, or None when no certificate was given."""
    from kizuna.errors import InputError

    if cert is None and key is None:
        if ca is not None:
            raise InputError.single("--tak-ca", "", "needs --tak-cert and --tak-key", ca)
        return None
    if cert is None or key is None:
        raise InputError.single("--tak-cert", "", "give both --tak-cert and --tak-key")
    from kizuna.gateways.tak import TlsFiles

    return TlsFiles(cert, key, ca)


@app.command()
def exercise(
    scenario: Annotated[str, typer.Argument(help="Scenario TOML file.")],
    out: Annotated[
        str, typer.Option("--out", help="Output directory (metrics.json, recording/, truth).")
    ] = "out/exercise",
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="Policy directory (default: policies/ by the scenario)."),
    ] = None,
    keys: Annotated[
        str | None,
        typer.Option("--keys", help="Key directory from `kizuna keys init` (default: seeded)."),
    ] = None,
    tak: Annotated[
        str | None,
        typer.Option("--tak", help="Stream a picture as CoT to tcp://HOST:PORT or tls://…"),
    ] = None,
    tak_nation: Annotated[
        str | None, typer.Option("--tak-nation", help="Whose picture (default: first nation).")
    ] = None,
    tak_cert: _TakCertOpt = None,
    tak_key: _TakKeyOpt = None,
    tak_ca: _TakCaOpt = None,
) -> None:
    """Run every nation's node on a simulated clock and network; record and score it."""
    import os

    # Many tiny (6x6) LAPACK calls: OpenBLAS threads only add hand-off cost (measured ~2x).
    # Must be set before numpy is first imported; a user's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from kizuna.runtime.exercise import run_command as run_exercise_command

    run_exercise_command(
        scenario, out, policies, keys, tak_url=tak, tak_nation=tak_nation,
        tak_tls=_tak_tls(tak_cert, tak_key, tak_ca),
    )  # fmt: skip


@app.command()
def report(
    out_dir: Annotated[
        str, typer.Argument(help="Exercise output directory (kizuna exercise --out).")
    ],
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", help="Scenario TOML (default: the one in DIR/metrics.json)."),
    ] = None,
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="Policy directory for entitlement (default: found)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if a picture-quality target is missed.")
    ] = False,
) -> None:
    """Rescore an exercise recording; rewrite DIR/metrics.json and DIR/report.html."""
    from kizuna.errors import EXIT_FAILURE
    from kizuna.metrics.report import print_summary, report_command, target_failures

    metrics = report_command(out_dir, scenario, policies)
    print_summary(metrics, out_dir, console)
    failures = target_failures(metrics)
    if check and failures:
        for line in failures:
            err_console.print(f"target missed: {line}", highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def truth(
    scenario: Annotated[str, typer.Argument(help="Scenario TOML file.")],
    at: Annotated[
        float | None,
        typer.Option("--at", help="Also list every object alive at this time (s since epoch)."),
    ] = None,
) -> None:
    """Solve every threat's truth (routes, aimed ballistic flights) and print what each does."""
    from kizuna.sim.truth import run_truth_command

    run_truth_command(scenario, at, console)


@app.command()
def cop(
    out_dir: Annotated[
        str | None, typer.Argument(help="Exercise output directory to replay (exercise --out).")
    ] = None,
    live: Annotated[
        str | None,
        typer.Option(
            "--live",
            help="Follow a run as it goes: exercise --out DIR, or a live node's DIR/nodes/NATION.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
    scenario: Annotated[
        str | None,
        typer.Option("--scenario", help="Scenario TOML (default: the one in DIR/metrics.json)."),
    ] = None,
) -> None:
    """Serve the web common operational picture of a recording (replay) or a live exercise."""
    from kizuna.cop.server import open_source, serve
    from kizuna.errors import InputError

    if (out_dir is None) == (live is None):
        raise InputError.single(
            "kizuna cop", "DIR / --live", "give exactly one", expected="DIR (replay) or --live DIR"
        )
    target = out_dir if out_dir is not None else str(live)
    store = open_source(target, scenario)
    console.print(
        f"Kizuna COP: http://{host}:{port}/ ({'live' if live else 'replay'} of {target}; "
        f"API docs at /docs)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    serve(store, host=host, port=port, live=live is not None)


keys_app = typer.Typer(
    help="Nations' Ed25519 signing keys and the public keyring.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

# Defence-production capacity planner: `kizuna industry plan|compare` (light import: typer only;
# the solver stack loads inside the commands).
from kizuna.industry.cli import industry_app  # noqa: E402

app.add_typer(industry_app, name="industry")

# Interoperability gateways: `kizuna asterix|dis|cot …` (typer only; gateways load in commands).
from kizuna.gateways.cli import asterix_app, cot_app, dis_app  # noqa: E402

app.add_typer(asterix_app, name="asterix")
app.add_typer(dis_app, name="dis")
app.add_typer(cot_app, name="cot")


@keys_app.command("init")
def keys_init(
    out: Annotated[str, typer.Option("--out", help="Directory to write the keys into.")],
    nations: Annotated[
        str | None, typer.Option("--nations", help="Comma-separated codes, e.g. USA,JPN,AUS.")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option("--scenario", help="Take the nations from this scenario.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key files.")] = False,
    tls: Annotated[
        bool,
        typer.Option("--tls", help="Also a coalition CA and per-nation TLS certs (live mode)."),
    ] = False,
) -> None:
    """Write a key pair per nation (private keys mode 0600) and keyring.json."""
    from kizuna.security.keys import init_keys_command

    written = init_keys_command(nations, scenario, out, force, console)
    if tls:
        from kizuna.security.certificates import init_certificates_command

        init_certificates_command(written, out, force, console)


# Missile warning and C2 planning: `kizuna plan coverage` and `kizuna compare`.
plan_app = typer.Typer(help="C2 planning: sensor coverage of defended areas.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("coverage")
def plan_coverage(
    scenario: Annotated[str, typer.Argument(help="Scenario TOML file.")],
    out: Annotated[
        str, typer.Option("--out", help="Output directory (coverage.html, coverage.json).")
    ] = "out/plan",
    candidates: Annotated[
        str | None,
        typer.Option("--candidates", help="TOML of candidate [[sensor]] tables (new sites)."),
    ] = None,
    add: Annotated[int, typer.Option("--add", help="Suggest this many extra sites (greedy).")] = 0,
) -> None:
    """Coverage of each defended area by altitude band; optionally the N best extra sites."""
    from kizuna.c2.coverage import run_command as run_plan_coverage

    run_plan_coverage(scenario, out, candidates, add, console)


@app.command()
def compare(
    scenario_a: Annotated[str, typer.Argument(help="Scenario A (TOML).")],
    scenario_b: Annotated[str, typer.Argument(help="Scenario B: same nations, epoch, threats.")],
    out: Annotated[
        str, typer.Option("--out", help="Output directory (A/ and B/ exercise outputs).")
    ] = "out/compare",
    policies: Annotated[
        str | None,
        typer.Option("--policies", help="Policy directory for both (default: each scenario's)."),
    ] = None,
) -> None:
    """Run two exercises of the same situation and print every metric side by side."""
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `kizuna exercise` (tiny LAPACK calls)
    from kizuna.c2.compare import run_command as run_compare

    run_compare(scenario_a, scenario_b, out, console, policies)


# Live, distributed mode over Zenoh: `kizuna node`, `kizuna sim --live`, `kizuna status`.
_ListenOpt = Annotated[
    list[str] | None,
    typer.Option("--listen", help="Zenoh endpoint to listen on, e.g. tcp/0.0.0.0:7447 (repeat)."),
]
_ConnectOpt = Annotated[
    list[str] | None,
    typer.Option("--connect", help="Zenoh endpoint of a peer, e.g. tcp/10.0.0.2:7447 (repeat)."),
]
_ExerciseOpt = Annotated[
    str | None, typer.Option("--exercise", help="Exercise id in the key space (default: name).")
]
_TlsOpt = Annotated[
    str | None,
    typer.Option("--tls", help="Key directory with tls/ (`kizuna keys init --tls`): mTLS + ACL."),
]


@app.command()
def node(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario TOML file.")],
    nation: Annotated[str, typer.Option("--nation", help="This node's nation code, e.g. JPN.")],
    listen: _ListenOpt = None,
    connect: _ConnectOpt = None,
    keys: Annotated[
        str | None, typer.Option("--keys", help="Key directory (default: seeded, sim only).")
    ] = None,
    policies: Annotated[
        str | None, typer.Option("--policies", help="Policy directory (default: by scenario).")
    ] = None,
    record: Annotated[
        str | None, typer.Option("--record", help="Record into DIR/nodes/<NATION>/.")
    ] = None,
    exercise: _ExerciseOpt = None,
    tls: _TlsOpt = None,
    tak: Annotated[
        str | None,
        typer.Option("--tak", help="Stream this node's picture as CoT to tcp://… or tls://…"),
    ] = None,
    tak_cert: _TakCertOpt = None,
    tak_key: _TakKeyOpt = None,
    tak_ca: _TakCaOpt = None,
) -> None:
    """Run one national node live (wall clock, Zenoh) until the live simulator finishes."""
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from kizuna.runtime.live import run_node_command

    run_node_command(
        scenario, nation, listen or [], connect or [], keys, policies, record, exercise, tls,
        tak_url=tak, tak_tls=_tak_tls(tak_cert, tak_key, tak_ca),
    )  # fmt: skip


@app.command()
def sim(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario TOML file.")],
    live: Annotated[bool, typer.Option("--live", help="Play in real time over Zenoh.")] = False,
    speed: Annotated[float, typer.Option("--speed", help="Times real time (e.g. 5).")] = 1.0,
    listen: _ListenOpt = None,
    connect: _ConnectOpt = None,
    record: Annotated[
        str | None,
        typer.Option("--record", help="Write plots/truth, merge the nodes' recordings, score."),
    ] = None,
    exercise: _ExerciseOpt = None,
    tls: _TlsOpt = None,
    start_delay: Annotated[
        float, typer.Option("--start-delay", help="Wall seconds before scenario time 0.")
    ] = 2.0,
    wait_for_nodes: Annotated[
        float,
        typer.Option("--wait-for-nodes", help="Wait up to S s for every node first (0: don't)."),
    ] = 60.0,
) -> None:
    """Play the world live: each sensor's plots go only to its own nation's node."""
    from kizuna.errors import InputError

    if not live:
        raise InputError.single("kizuna sim", "--live", "only live mode exists", None, "--live")
    from kizuna.runtime.live_sim import run_sim_command

    run_sim_command(
        scenario, listen or [], connect or [], speed, record, exercise, tls, start_delay, console,
        wait_for_nodes,
    )  # fmt: skip


@app.command()
def status(
    scenario: Annotated[str, typer.Option("--scenario", help="Scenario TOML file.")],
    connect: _ConnectOpt = None,
    keys: Annotated[
        str | None, typer.Option("--keys", help="Key directory (default: seeded).")
    ] = None,
    exercise: _ExerciseOpt = None,
    tls: _TlsOpt = None,
    listen_s: Annotated[
        float, typer.Option("--listen-s", help="Seconds to listen for Status messages.")
    ] = 3.0,
) -> None:
    """The alliance at a glance: every node's signed Status (uptime, tracks, links, rejects)."""
    from kizuna.runtime.live_sim import run_status_command

    run_status_command(scenario, connect or [], keys, exercise, tls, listen_s, console)
