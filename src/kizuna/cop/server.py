"""The COP web server: a JSON API over a recorded (or growing) exercise, a WebSocket that pushes
pictures during replay and live, and the built front end (``static/``).

Every endpoint answers for one nation: exactly what that nation's node held at the latest
reporting time ≤ t (see :mod:`kizuna.cop.picture_store`). Bad parameters are 4xx with a message
naming the parameter, what was found and what was expected — never a 500 (tested with
schemathesis against the OpenAPI schema this module declares).

Live sources: ``--live DIR`` follows a recording directory as it grows: an exercise's ``--out``
directory or a live node's ``DIR/nodes/<NATION>`` (``kizuna node --record DIR``). The recorder
journals each reporting time while the run goes (:mod:`kizuna.record.recorder`); every
``LIVE_POLL_S`` the server checks the files and, if they changed, loads a new
:class:`PictureStore` in a worker thread and swaps it in with one assignment — each request
and WebSocket frame reads one store from start to end. The seam for following a node over Zenoh
directly is :func:`open_source`.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from fastapi import FastAPI, HTTPException, Query, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from kizuna.cop.geojson import picture_feature_collection
from kizuna.cop.picture_store import PictureStore
from kizuna.errors import InputError

STATIC_DIR = Path(__file__).parent / "static"
LIVE_POLL_S = 1.0  # how often --live looks for a grown recording
MAX_TRACK_NUMBER = 2**62  # well inside int64: numbers beyond cannot exist and must not overflow


# -- response models (the OpenAPI schema; handlers return pre-encoded JSON of this shape) ---------


class NationOut(BaseModel):
    code: str
    name: str
    colour: str


class TimesOut(BaseModel):
    mode: Literal["replay", "live"]
    epoch: str | None
    times: list[float]


class TrackOut(BaseModel):
    track_number: int
    time: float
    lat_deg: float
    lon_deg: float
    alt_m: float
    course_deg: float
    speed_mps: float
    climb_mps: float
    pos_sigma_m: float | None
    quality: int
    category: str
    identity: str
    label: str
    contributors: list[str]
    contributing_nations: list[str]
    source_time: float | None


class PictureOut(BaseModel):
    nation: str
    t: float | None
    time: float | None  # the reporting time answered (latest ≤ t), None before the first
    tracks: list[TrackOut]


class CodedOut(BaseModel):
    """A dictionary-coded text column: row k's text is ``values[codes[k]]``."""

    values: list[str]
    codes: list[int]


class PictureColumnsOut(BaseModel):
    """The picture as columns (one entry per track in each), for the map and the table."""

    nation: str
    t: float | None
    time: float | None
    n: int
    track_number: list[int]
    lat_deg: list[float]
    lon_deg: list[float]
    alt_m: list[float]
    course_deg: list[float]
    speed_mps: list[float]
    quality: list[int]
    category: CodedOut
    identity: CodedOut
    contributing_nations: CodedOut  # comma-joined nation codes
    label: CodedOut


class TrackHistoryOut(BaseModel):
    nation: str
    track_number: int
    latest: TrackOut
    history: list[TrackOut]


class WarningRevisionOut(BaseModel):
    time: float
    revision: int
    status: str
    impact_time: float | None
    impact_lat_deg: float | None
    impact_lon_deg: float | None
    endangered_assets: list[str]


class WarningOut(BaseModel):
    threat_track_number: int
    issuer: str | None
    time: float
    revision: int
    status: str
    launch_time: float | None
    impact_time: float | None
    impact_lat_deg: float | None
    impact_lon_deg: float | None
    semi_major_m: float | None
    semi_minor_m: float | None
    orientation_rad: float | None
    ellipse: list[list[float]] | None
    endangered_assets: list[str]
    label: str
    history: list[WarningRevisionOut]


class WarningsOut(BaseModel):
    nation: str
    t: float | None
    warnings: list[WarningOut]


class AssetOut(BaseModel):
    name: str
    nation: str
    lat_deg: float
    lon_deg: float
    radius_km: float
    value: float
    outline: list[list[float]]


class SensorOut(BaseModel):
    id: str
    nation: str
    kind: str
    lat_deg: float | None
    lon_deg: float | None
    max_range_km: float
    coverage: list[list[float]] | None


class ErrorOut(BaseModel):
    detail: str


# Module level: FastAPI resolves these annotations by name (postponed evaluation).
NationQuery = Annotated[
    str, Query(description="Nation code, e.g. JPN", min_length=1, max_length=16)
]
TimeQuery = Annotated[
    float | None,
    Query(
        description="Seconds since the scenario epoch (default: the latest reporting time)",
        allow_inf_nan=False,
    ),
]

_ENCODER = msgspec.json.Encoder()


def _json(obj: Any) -> Response:
    return Response(_ENCODER.encode(obj), media_type="application/json")


def open_source(target: str, scenario: str | None = None) -> PictureStore:
    """The picture source for ``kizuna cop``: a recording directory (replay, or ``--live``
    following it as it grows). A live node URL (zenoh/tcp) is the future seam."""
    if "://" in target:
        raise InputError.single(
            target,
            "",
            "following a live node over the network is not supported yet",
            expected="an exercise --out directory (kizuna cop --live DIR tails it)",
        )
    return PictureStore(target, scenario)


class GeoJSONResponse(Response):
    media_type = "application/geo+json"  # RFC 7946 §12


class StoreHolder:
    """The store requests read now; :func:`_poll` replaces it as a whole when files change."""

    def __init__(self, store: PictureStore) -> None:
        self.store = store


def create_app(store: PictureStore, live: bool = False) -> FastAPI:
    """The FastAPI application serving ``store`` (``live``: follow it as it grows)."""
    holder = StoreHolder(store)

    def current() -> PictureStore:
        return holder.store

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        task = asyncio.create_task(_poll(holder)) if live else None
        yield
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="Kizuna common operational picture",
        version="1",
        description=(
            "What one nation's node held at a moment: tracks (degrees, metres, m/s), warnings "
            "with impact ellipses, assets and sensor coverage. All data notional."
        ),
        lifespan=lifespan,
    )
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorOut, "description": "unknown nation or track"}
    }

    def check_nation(nation: str) -> str:
        codes = current().nation_codes()
        if nation not in codes:
            raise HTTPException(
                404,
                f"nation: unknown nation {nation!r} (expected one of {', '.join(codes)})",
            )
        return nation

    def default_t(store: PictureStore, t: float | None) -> float:
        if t is not None:
            return t
        return float(store.times[-1]) if len(store.times) else 0.0

    @app.get("/api/nations", response_model=list[NationOut])
    def nations() -> Response:
        """The nations of the exercise, in scenario order, with their display colours."""
        return _json(current().nations())

    @app.get("/api/times", response_model=TimesOut)
    def times() -> Response:
        """The reporting times (seconds since epoch) in the recording."""
        store = current()
        epoch = None
        if store.scenario is not None:
            epoch = store.scenario.epoch.isoformat().replace("+00:00", "Z")
        return _json(
            {"mode": "live" if live else "replay", "epoch": epoch, "times": store.times.tolist()}
        )

    @app.get("/api/picture", response_model=PictureOut, responses=not_found)
    def picture(nation: NationQuery, t: TimeQuery = None) -> Response:
        """Exactly what ``nation`` held at the latest reporting time ≤ t."""
        store = current()
        check_nation(nation)
        at, rows = store.picture_rows(nation, default_t(store, t))
        return _json({"nation": nation, "t": t, "time": at, "tracks": store.tracks(rows)})

    @app.get("/api/picture/columns", response_model=PictureColumnsOut, responses=not_found)
    def picture_columns(nation: NationQuery, t: TimeQuery = None) -> Response:
        """The same picture as ``/api/picture``, as compact columns (what the web page loads:
        a tenth of the bytes at 5,000 tracks, and nothing per track to build or parse)."""
        store = current()
        check_nation(nation)
        at, rows = store.picture_rows(nation, default_t(store, t))
        return _json({"nation": nation, "t": t, "time": at, **store.picture_columns(rows)})

    @app.get(
        "/api/picture/geojson",
        response_class=GeoJSONResponse,
        responses={
            200: {"content": {"application/geo+json": {"schema": {"type": "object"}}}},
            404: {  # errors stay JSON (FastAPI would give them this route's media type)
                "description": "unknown nation",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}
                },
            },
        },
    )
    def picture_geojson(nation: NationQuery, t: TimeQuery = None) -> Response:
        """The same picture as a GeoJSON FeatureCollection: a Point per track and a heading
        vector LineString per moving track (properties track_number, identity, category,
        nations). The page's map fetches it in its web worker."""
        store = current()
        check_nation(nation)
        _, rows = store.picture_rows(nation, default_t(store, t))
        return GeoJSONResponse(_ENCODER.encode(picture_feature_collection(store, rows)))

    @app.get("/api/tracks/{number}", response_model=TrackHistoryOut, responses=not_found)
    def track(
        number: Annotated[int, PathParam(ge=0, le=MAX_TRACK_NUMBER, description="Track number")],
        nation: NationQuery,
    ) -> Response:
        """One track's details and its history in ``nation``'s picture."""
        store = current()
        check_nation(nation)
        rows = store.track_history(nation, number)
        if len(rows) == 0:
            raise HTTPException(404, f"number: {nation} never held track {number}")
        history = store.tracks(rows)
        return _json(
            {"nation": nation, "track_number": number, "latest": history[-1], "history": history}
        )

    @app.get("/api/warnings", response_model=WarningsOut, responses=not_found)
    def warnings(nation: NationQuery, t: TimeQuery = None) -> Response:
        """Missile warnings ``nation`` held at t: each threat's latest revision, its impact
        ellipse as a [lon, lat] ring and its revision history. Empty if none were recorded."""
        store = current()
        check_nation(nation)
        return _json(
            {"nation": nation, "t": t, "warnings": store.warnings_at(nation, default_t(store, t))}
        )

    @app.get("/api/assets", response_model=list[AssetOut])
    def assets() -> Response:
        """Defended assets with their outline rings."""
        return _json(current().assets())

    @app.get("/api/sensors", response_model=list[SensorOut])
    def sensors() -> Response:
        """Sensors with coverage outlines (circles or sectors of their maximum range)."""
        return _json(current().sensors())

    @app.get("/api/metrics", response_model=dict[str, Any])
    def metrics() -> Response:
        """The exercise's metrics.json (empty object if not written yet)."""
        return _json(current().metrics)

    @app.websocket("/ws/picture")
    async def ws_picture(websocket: WebSocket) -> None:
        """Push pictures: replay from ``t`` at ``speed`` × real time, or (live) each new one.

        Query: nation, t (start), speed (> 0). The client may send JSON
        ``{"nation": .., "t": .., "speed": .., "playing": bool}`` to steer. Frames:
        ``{"type": "picture", nation, time, picture, warnings}`` (``picture`` in the column
        format of ``/api/picture/columns``) and ``{"type": "end"}``."""
        await websocket.accept()
        params = websocket.query_params
        state: dict[str, Any] = {"nation": params.get("nation", ""), "playing": True}
        try:
            state["t"] = float(params.get("t", "nan"))
            state["speed"] = float(params.get("speed", "1"))
        except ValueError:
            await websocket.close(1008, "t and speed must be numbers")
            return
        if state["nation"] not in current().nation_codes():
            await websocket.close(1008, f"nation: unknown nation {state['nation']!r}")
            return
        if not math.isfinite(state["speed"]) or state["speed"] <= 0:
            await websocket.close(1008, "speed: must be a finite number > 0")
            return
        await _stream(websocket, current, state, live)

    if STATIC_DIR.joinpath("index.html").exists():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")
    else:

        @app.get("/", include_in_schema=False)
        def no_front_end() -> HTMLResponse:
            return HTMLResponse("front end not built: run `make web`", status_code=503)

    generate_openapi = app.openapi

    def openapi_with_nations() -> dict[str, Any]:
        """The schema, with the recording's nation codes as the ``nation`` enum (rebuilt on
        every call: in live mode nations can appear)."""
        app.openapi_schema = None
        schema = generate_openapi()
        codes = current().nation_codes()
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "nation" and codes:
                    parameter["schema"]["enum"] = codes
        return schema

    app.openapi = openapi_with_nations  # type: ignore[method-assign]
    return app


async def _poll(holder: StoreHolder) -> None:
    wait = LIVE_POLL_S
    while True:
        await asyncio.sleep(wait)
        started = time.perf_counter()
        with suppress(InputError):  # a file being replaced: try again next time
            fresh = await asyncio.to_thread(holder.store.reloaded)
            if fresh is not None:
                holder.store = fresh
        # A long recording takes a while to load (0.5 s for 100,000 rows): poll at most half
        # the time, so following a run never takes more than half a CPU from it.
        wait = max(LIVE_POLL_S, time.perf_counter() - started)


def _frame(store: PictureStore, nation: str, t: float) -> dict[str, Any]:
    at, rows = store.picture_rows(nation, t)
    return {
        "type": "picture",
        "nation": nation,
        "time": at,
        "picture": {"nation": nation, "t": t, "time": at, **store.picture_columns(rows)},
        "warnings": store.warnings_at(nation, t),
    }


async def _stream(
    websocket: WebSocket,
    current: Callable[[], PictureStore],
    state: dict[str, Any],
    live: bool,
) -> None:
    sent_version = -1
    sent_time: float | None = None
    try:
        while True:
            wait = LIVE_POLL_S
            store = current()
            times = store.times
            if live:
                latest = float(times[-1]) if len(times) else None
                if latest is not None and (store.version, latest) != (sent_version, sent_time):
                    await websocket.send_text(
                        _ENCODER.encode(_frame(store, state["nation"], latest)).decode()
                    )
                    sent_version, sent_time = store.version, latest
            elif state["playing"] and len(times):
                t = state["t"]
                if not math.isfinite(t) or t < times[0]:
                    t = float(times[0])
                await websocket.send_text(
                    _ENCODER.encode(_frame(store, state["nation"], t)).decode()
                )
                later = times[times > t]
                if len(later) == 0:
                    state["playing"] = False
                    await websocket.send_json({"type": "end"})
                else:
                    wait = (float(later[0]) - t) / state["speed"]
                    state["t"] = float(later[0])
            try:
                text = await asyncio.wait_for(websocket.receive_text(), timeout=wait)
            except TimeoutError:
                continue
            try:
                message = json.loads(text)
            except ValueError:
                continue  # not JSON: ignored, like any control value that makes no sense
            if isinstance(message, dict):
                _steer(state, message, store)
                sent_version = -1  # a steered client wants a frame now
    except WebSocketDisconnect:
        return


def _steer(state: dict[str, Any], message: dict[str, Any], store: PictureStore) -> None:
    """Apply a client's control message; silently ignore values that make no sense."""
    nation = message.get("nation")
    if isinstance(nation, str) and nation in store.nation_codes():
        state["nation"] = nation
    t = message.get("t")
    if isinstance(t, int | float) and math.isfinite(t):
        state["t"] = float(t)
    speed = message.get("speed")
    if isinstance(speed, int | float) and math.isfinite(speed) and speed > 0:
        state["speed"] = float(speed)
    playing = message.get("playing")
    if isinstance(playing, bool):
        state["playing"] = playing


def serve(
    store: PictureStore, host: str = "127.0.0.1", port: int = 8000, live: bool = False
) -> None:
    """Run the COP server on ``store`` (from :func:`open_source`); blocks until interrupted."""
    import uvicorn

    uvicorn.run(create_app(store, live=live), host=host, port=port, log_level="warning")
