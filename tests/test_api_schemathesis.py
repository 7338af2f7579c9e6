"""Property-based API tests: schemathesis fuzzes every operation of /openapi.json.

Runs against the ASGI app in-process (no network) over a small synthetic plan with a
few events, with the write token, so writes are exercised too. The bar: no request,
however malformed, gets a 5xx answer, and every answer matches its documented status
code, media type and schema. Bounded to 25 examples per operation.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402

TOKEN = "schemathesis-token"
_DIR = Path(tempfile.mkdtemp(prefix="gridmap-fuzz-"))
# The schema needs the app when the module is collected; the store is filled (and the
# folder removed) by the module fixture below, so collecting stays cheap.
app = create_app(settings=Settings(store_path=_DIR / "store.gpkg", token=TOKEN, max_upload_mb=1))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _store_with_plan():
    from api.demo import lattice_plan, sample_events
    from api.main import store_plan

    plan = lattice_plan(1000, 600)
    store_plan(app.state.store, plan, "fuzz town")
    with TestClient(app) as c:
        r = c.post(
            "/api/events",
            json=sample_events(plan, 30),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 201, r.text
    yield
    app.state.jobs.shutdown(wait=True)
    app.state.store.close()
    shutil.rmtree(_DIR, ignore_errors=True)


#: No 5xx, and answers match the documented status codes, media types and schemas.
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors(case):
    """Every generated request gets an answer below 500."""
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=_CHECKS)
