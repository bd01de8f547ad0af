"""schemathesis against our own OpenAPI schema, in process: whatever a caller sends, the
answer is never a 500 and always one the schema describes (status, content type, body)."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services import api_key_create
from studio.services import user_create
from tests.factories import finished_render, ready_avatar

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
pytestmark = pytest.mark.slow
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def bearer(db, settings_for_fuzzing):
    alice = user_create(username="alice", password="correct horse battery")
    team = alice.teams.get()
    # Real rows, so generated ids sometimes meet an avatar or render that exists.
    finished_render(avatar=ready_avatar(team=team, user=alice), user=alice)
    _, secret = api_key_create(team=team, user=alice, name="fuzz")
    return f"Bearer {secret}"


@pytest.fixture
def settings_for_fuzzing(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 0
    settings.ALLOWED_HOSTS = ["*"]
    # As Django's test client does: the test's transaction must outlive each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_500_or_an_answer_off_the_schema(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=CHECKS)
