"""The FastAPI application: built once per process, state in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import batch_list, class_set, exemplar_routes
from service.api.deps import AppState
from service.api.problems import RequestContextMiddleware, install_handlers
from service.api.routes import health, router
from service.batches import BatchBackend
from service.batches.worker import BatchRunner
from service.errors import DraftmarkError
from service.llm.factory import build_llm
from service.llm.port import LLM
from service.lti.http import shared_client
from service.persistence.db import BUILTIN_OWNER, make_engine, migrate
from service.persistence.stores import Store
from service.schemes import SchemeLibrary
from service.settings import Settings
from service.version import __version__
from service.web import mount_web

log = logging.getLogger("draftmark.api")


def create_app(settings: Settings | None = None, *, llm: LLM | None = None) -> FastAPI:
    """The API app. ``llm`` overrides the configured backend (tests, benchmarks)."""
    config = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(config.resolved_database_url)
        await asyncio.to_thread(migrate, engine)
        store = Store(engine)
        await asyncio.to_thread(store.key_digest, "")  # load (or create) the API-key pepper once
        for scheme in SchemeLibrary().list():
            try:
                await asyncio.to_thread(store.put_scheme, scheme, owner=BUILTIN_OWNER)
            except DraftmarkError as exc:
                log.warning("built-in scheme %s not re-registered: %s", scheme.ref, exc.message)
        model: LLM = llm if llm is not None else await asyncio.to_thread(build_llm, config)
        runner: BatchBackend
        if config.redis_url is not None:
            from service.batches.dispatch import CeleryDispatcher

            runner = CeleryDispatcher(store, config)
        else:
            runner = BatchRunner(store, model, config)
        app.state.draftmark = AppState(settings=config, store=store, llm=model, runner=runner)
        if config.auth_disabled:
            log.warning(
                "!!! API KEY AUTH IS DISABLED (DRAFTMARK_AUTH_DISABLED=1): anyone who can reach this port "
                "can mark essays and read every stored result. Use only on a trusted machine. !!!"
            )
        await runner.start()
        # scores queued for an LMS before a restart go out now
        app.state.draftmark.lti_sender.kick(store, shared_client(allow_private=config.lti_allow_private)[0])
        try:
            yield
        finally:
            await runner.stop()
            await app.state.draftmark.lti_sender.drain()
            await app.state.draftmark.refits.drain()
            engine.dispose()

    app = FastAPI(
        title="draftmark",
        version=__version__,
        description="LLM-assisted essay marking against levels-of-response mark schemes. "
        "Results are drafts for a teacher to review.",
        lifespan=lifespan,
        docs_url=None,  # served by routes.health, behind DRAFTMARK_OPS_TOKEN when it is set
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=config.max_body_bytes)
    install_handlers(app)
    app.include_router(router)
    app.include_router(exemplar_routes.router)
    app.include_router(batch_list.router)
    app.include_router(class_set.router)
    app.include_router(health)
    mount_web(app, auth_disabled=config.auth_disabled)
    return app
