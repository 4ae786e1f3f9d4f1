"""The API keeps the promises of its OpenAPI document: schemathesis generates requests from
``/api/openapi.json``, valid and invalid ones, and checks every answer (status codes, bodies
against their schemas, content types, no server errors) against the real app, served over
HTTP on a free port, on SQLite and PostgreSQL, with a token."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from intake.accounts.credentials import create_token
from intake.settings import Settings
from intake.store.db import Database
from intake.store.models import utcnow
from tests.web_support import LiveServer, add_contact, add_intake, add_request
from web import create_app

EXAMPLES = 25  # per operation: enough to find a broken promise, quick enough for every run


@pytest.fixture
def live(settings: Settings, db: Database, redis_client: redis.Redis) -> Iterator[LiveServer]:
    """The app over real HTTP, with a few requests and intake rows to find."""
    ada = add_contact(db, "ada@acme.example")
    for hours in range(3):
        add_request(db, ada, created_at=utcnow() - dt.timedelta(hours=hours), severity=hours + 1)
    add_intake(db, "q1")
    add_intake(db, "a1", outcome="accepted", reason="new_request")
    app = create_app(settings.replace(secret_key="contract"), db=db, redis_client=redis_client)
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def auth(db: Database) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(db, 'contract')}"}


def operations(live: LiveServer, auth: dict[str, str]) -> list[APIOperation]:
    schema = schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")
    schema.config.update(base_url=live.url, headers=auth)
    return [result.ok() for result in schema.get_all_operations()]


def has_inputs(operation: APIOperation) -> bool:
    return any(len(part) for part in (operation.path_parameters, operation.query, operation.body))


def check_operation(operation: APIOperation, mode: GenerationMode) -> None:
    """Run EXAMPLES generated requests of one kind against one operation."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def keeps_its_promise(case: Case) -> None:
        if mode is GenerationMode.POSITIVE:
            # A cursor is opaque: only one the API handed out names a row; any other is refused
            # with 422 though it fits the pattern. Paging by real cursors is tested in test_api.
            if case.query:
                case.query.pop("cursor", None)
            case.call_and_validate()
        else:
            # Invalid requests must still get well-formed answers and never a 5xx; the API
            # treats empty and unknown query parameters as absent (as documented), which the
            # strict "invalid data must be refused" check would count against it.
            case.call_and_validate(excluded_checks=[negative_data_rejection])

    keeps_its_promise()


def test_the_api_answers_as_its_openapi_document_says(
    live: LiveServer, auth: dict[str, str]
) -> None:
    """Every operation of the document with generated requests. (Schemathesis's own pytest
    plugin cannot take a fixture-served app under this pytest, so the cases come from each
    operation's Hypothesis strategy.)"""
    checked = []
    for operation, mode in itertools.product(operations(live, auth), GenerationMode):
        if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
            continue  # nothing to get wrong in a request without parameters or body
        check_operation(operation, mode)
        checked.append(f"{operation.label} ({mode.value})")

    assert len(checked) == 31, checked  # 16 operations, 15 of them with inputs to get wrong
