"""The REST app: POST /predict, GET /health, /info, /metrics, / (a page to try the model), /docs.

Every answer is JSON with a status that says what happened, and an error is one readable
sentence, never a traceback: 400 for a body that is not JSON, 401 without the API key, 413 for
more texts or characters than the limits, 422 for a body of the wrong shape or an empty text,
503 with Retry-After when the queue is full, 500 (logged, not shown) for a bug.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from starlette.exceptions import HTTPException

from tunesmith.errors import UserError
from tunesmith.serve.batcher import MicroBatcher, QueueFull
from tunesmith.serve.metrics import Metrics
from tunesmith.serve.page import PAGE
from tunesmith.serve.settings import API_KEY_HEADER, Settings

logger = logging.getLogger(__name__)

# Open without the key: liveness probes, and the page (it asks for the key itself).
OPEN_PATHS = frozenset({"/", "/health"})
RETRY_AFTER_S = 1


class PredictRequest(BaseModel):
    """`{"text": ...}` for one text or `{"texts": [...]}` for several; pairs in `text_pair` / `text_pairs`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: str | None = None
    texts: list[str] | None = None
    text_pair: str | None = None
    text_pairs: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError('give either "text" (one string) or "texts" (a list of strings)')
        if self.text_pair is not None and self.text_pairs is not None:
            raise ValueError('give "text_pair" or "text_pairs", not both')
        return self

    def inputs(self) -> tuple[list[str], list[str] | None]:
        texts = [self.text] if self.text is not None else list(self.texts or [])
        pairs = [self.text_pair] if self.text_pair is not None else self.text_pairs
        return texts, pairs


class Refused(Exception):
    """A request answered with `status` and `message` (and `headers`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(predictor: Any, settings: Settings, info: dict[str, Any]) -> FastAPI:
    """The app serving `predictor` (anything with `.predict(texts, pairs, batch_size)`, `.config`, `.task`)."""
    metrics = Metrics()
    batcher = MicroBatcher(
        lambda texts, pairs: predictor.predict(texts, pairs, batch_size=settings.max_batch),
        max_batch=settings.max_batch if settings.batching else 1,
        max_wait_s=settings.max_wait_ms / 1000 if settings.batching else 0.0,
        max_queue=settings.max_queue,
        on_batch=metrics.batch_size.observe,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()  # after uvicorn has let in-flight requests finish: they are all answered

    app = FastAPI(title="tunesmith", summary=f"Predictions of a {predictor.config.task} model", lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    _add_guards(app, settings, metrics)
    _add_error_handlers(app)

    @app.post("/predict", openapi_extra=_request_schema())
    async def predict(request: Request) -> dict[str, Any]:
        """Predictions, one per text, in order: label/score/probabilities, value, labels, or entities."""
        texts, pairs = _checked_inputs(predictor, settings, await _read_json(request, settings.max_body_bytes))
        try:
            results = await batcher.submit(texts, pairs)
        except QueueFull:
            raise Refused(503, "The server is busy: try again shortly.", {"Retry-After": str(RETRY_AFTER_S)}) from None
        metrics.texts.inc(len(texts))
        return {"predictions": results}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "task": predictor.config.task,
            "api_key_required": settings.api_key is not None,
            "max_texts": settings.max_texts,
            "max_chars": settings.max_chars,
        }

    @app.get("/info")
    async def about() -> dict[str, Any]:
        return info

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queue.set(batcher.waiting)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    return app


def _add_guards(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The API key, then the request; every answer counted and timed, and no error escapes as a traceback."""
        began = time.perf_counter()
        try:
            if settings.api_key is not None and request.url.path not in OPEN_PATHS:
                given = request.headers.get(API_KEY_HEADER, "")
                # Compared in constant time: the answer's timing must not spell out the key.
                if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
                    raise Refused(401, f"Missing or wrong API key: send it in the {API_KEY_HEADER} header.")
            response = await call_next(request)
        except Refused as refused:
            response = _error(refused.status, refused.message, refused.headers)
        except Exception:
            logger.exception("error answering %s %s", request.method, request.url.path)
            response = _error(500, "Internal error: the server could not answer this request.")
        metrics.observe(request.url.path, response.status_code, time.perf_counter() - began)
        return response


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc.errors()))


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON, read no further than `limit` bytes (a chunked body has no length to check first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"The request body is {int(declared):,} bytes, more than this server reads ({limit:,}).")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"The request body is longer than this server reads ({limit:,} bytes).")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f'The request body is not valid JSON ({exc}). Send e.g. {{"texts": ["..."]}}.') from None


def _checked_inputs(predictor: Any, settings: Settings, body: Any) -> tuple[list[str], list[str] | None]:
    """The texts and pairs of a request body, within the limits and readable by the model."""
    from tunesmith.data.splits import check_pairs, check_texts

    try:
        request = PredictRequest.model_validate(body)
    except ValidationError as exc:
        raise Refused(422, _validation_message(exc.errors())) from None
    texts, pairs = request.inputs()
    if len(texts) > settings.max_texts:
        raise Refused(413, f"{len(texts)} texts in one request; this server takes at most {settings.max_texts}.")
    if not texts:
        raise Refused(422, '"texts" is empty: give at least one text.')
    for name, values in (("texts", texts), ("text_pairs", pairs or [])):
        for index, value in enumerate(values):
            if len(value) > settings.max_chars:
                message = (
                    f"{name}[{index}] has {len(value):,} characters; this server takes at most {settings.max_chars:,}."
                )
                raise Refused(413, message)
    try:
        check_pairs(predictor.config.data, texts, pairs)
        check_texts(texts, "texts[{}]".format)
        if pairs is not None:
            check_texts(pairs, "text_pairs[{}]".format)
    except UserError as exc:
        raise Refused(422, str(exc)) from None
    return texts, pairs


def _validation_message(errors: Any) -> str:
    """pydantic's errors as one sentence: where, and what was wrong (never the whole input echoed back)."""
    parts = []
    for error in list(errors)[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + '. Send {"text": "..."} or {"texts": ["...", ...]}.'


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _request_schema() -> dict[str, Any]:
    # The body is read by hand (to bound its size), so its schema is declared for the docs here.
    return {"requestBody": {"content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}}
