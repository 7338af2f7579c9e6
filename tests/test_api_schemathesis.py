"""Property-based API tests: schemathesis fuzzes every operation of /openapi.json.

Two runs, both with the bootstrap admin token (so writes, users and the audit log are
exercised too) over a small synthetic plan with a few events:

* in-process (ASGI, no network), per operation: examples, coverage and fuzzing;
* ``st run`` against a real ``uvicorn`` server, as CI runs it: every phase including
  the stateful one (links between operations), every check.

The bar: no request, however malformed, gets a 5xx answer; every answer matches its
documented status code, media type, headers and schema; requests that break the
schema are refused; methods the schema does not list get 405 with a correct
``Allow``; operations that need a token refuse requests without one.

Two settings of the checks, and why:

* ``negative_data_rejection`` also counts 413 as a rejection: a batch of 10,001 events
  is refused by the body limit (1 MB here) before the schema's ``maxItems``.
* ``positive_data_acceptance`` is off: requests that match the schema can still be
  refused for what only the server knows (a grid code that is not in the plan, a
  file that is not geodata, a tile URL without ``{z}``); those are 4xx by design.

Both runs are deterministic in CI; set ``GRIDMAP_FUZZ_SEED`` to explore other cases
(``--hypothesis-seed`` for the in-process run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from live_support import free_port

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from api.main import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "schemathesis-token"
#: Statuses that count as refusing schema-violating data (schemathesis' list + 413).
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CHECK_CONFIG = {
    "negative_data_rejection": {"expected-statuses": REJECTED},
    "positive_data_acceptance": {"enabled": False},
}
_DIR = Path(tempfile.mkdtemp(prefix="gridmap-fuzz-"))
# The schema needs the app when the module is collected; the store is filled (and the
# folder removed) by the module fixture below, so collecting stays cheap.
app = create_app(settings=Settings(store_path=_DIR / "store.gpkg", token=TOKEN, max_upload_mb=1))
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", app, config=SchemathesisConfig.from_dict({"checks": CHECK_CONFIG})
)


def _fill(store_path: Path) -> None:
    """Store the fuzz town and 30 events."""
    from api.demo import lattice_plan, sample_events
    from api.main import store_plan

    fill = create_app(settings=Settings(store_path=store_path, token=TOKEN))
    plan = lattice_plan(1000, 600)
    store_plan(fill.state.store, plan, "fuzz town")
    with TestClient(fill) as c:
        r = c.post(
            "/api/events",
            json=sample_events(plan, 30),
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module", autouse=True)
def _store_with_plan():
    _fill(_DIR / "store.gpkg")
    yield
    app.state.jobs.shutdown(wait=True)
    app.state.store.close()
    shutil.rmtree(_DIR, ignore_errors=True)


#: Every check schemathesis has, but positive_data_acceptance (see the module docstring).
_CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,
    st_checks.missing_required_header,
    st_checks.unsupported_method,
    st_checks.allow_header_conformance,
    st_checks.ignored_auth,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize="GRIDMAP_FUZZ_SEED" not in os.environ,  # CI: the same cases every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_errors(case):
    """Every generated request gets an answer below 500 that matches the schema."""
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=_CHECKS)


def test_schemathesis_run_finds_nothing(tmp_path):
    """``st run --checks all`` (every phase, stateful too) against uvicorn: no failure."""
    httpx = pytest.importorskip("httpx")
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("the schemathesis command line (st) is not installed")
    store = tmp_path / "store.gpkg"
    _fill(store)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[checks.negative_data_rejection]\n"
        f"expected-statuses = {REJECTED!r}\n"
        "[checks.positive_data_acceptance]\n"
        "enabled = false\n".replace("'", '"')
    )
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_STORE": str(store),
        "GRIDMAP_TOKEN": TOKEN,
        "GRIDMAP_MAX_UPLOAD_MB": "1",
    }
    log = (tmp_path / "uvicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory"]
        + ["--port", str(port), "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        t = time.monotonic()
        while True:
            try:
                if httpx.get(url + "/api/settings", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() - t < 90, "uvicorn did not start"
            time.sleep(0.1)
        run = subprocess.run(
            [str(st), "--no-color", "--config-file", str(config), "run", url + "/openapi.json"]
            + ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]
            + ["--max-examples", "25", "--seed", os.environ.get("GRIDMAP_FUZZ_SEED", "16")]
            + ["--workers", "1"]
            + ["-H", f"Authorization: Bearer {TOKEN}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=1200,
        )
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in (tmp_path / "uvicorn.log").read_text()
