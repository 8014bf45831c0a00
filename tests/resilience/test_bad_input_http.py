"""Bad input over HTTP (issue #8): the three routes, called as the Functions host
calls them (func.HttpRequest into the indexed functions), fed malformed and hostile
requests drawn by hypothesis.

Every answer is a 4xx JSON error ``{"error": {"code", "message"}}`` naming what is
wrong, or a 200 only for a genuinely valid request, which is then a dry run: the
function-key route refuses an otherwise valid ``dry_run=false`` or ``force`` with a
403 naming the master-key route (real runs are covered in tests/foundation). Never
a 500, a stack trace, a write to the sandbox, or a run record for a refused request.

Each request draws every part (method, name, query, body) from a mix of valid and
hostile values, each tagged with the fault it carries; the test's own oracle says
which status must come back (405 method, then 404 name, then 413 size, then 400,
then 403 for a real run or force). Most draws carry a fault; the few valid ones run a
dry run (~0.1-1 s), capped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import azure.functions as func
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobs import registry, service
from jobs.requests import MAX_BODY_BYTES
from tests.app_functions import user_function

JOBS = tuple(registry.JOBS)
FORCE_JOB = "secret-rotation"  # the only job that takes an option
VALID_RUNS_PER_TEST = 20  # each is a real dry run against the sandbox

SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- calling the functions and reading what they did --------------------------------------------

def call(function_name: str, method: str, name: str | None = None, *, params: dict[str, str] | None = None,
         body: bytes = b"") -> func.HttpResponse:
    path = {"http_list_jobs": "/api/jobs", "http_run_job": f"/api/jobs/{quote(name or '', safe='')}/run",
            "http_latest_run": f"/api/jobs/{quote(name or '', safe='')}/runs/latest"}[function_name]
    req = func.HttpRequest(method=method, url=f"http://localhost:7071{path}", body=body,
                           params=params or {}, route_params={} if name is None else {"name": name},
                           headers={"Content-Type": "application/json"})
    return user_function(function_name)(req)


READ_POSTS = ("query", "forecast", "metrics:getBatch", "listKeys")  # POSTs that only read


def writes(stack) -> list[tuple[str, str, str]]:
    """Sandbox calls that change something (the request log of the fake Azure)."""
    out = []
    for r in stack.sandbox.request_log():
        if r["path"].startswith("/_sandbox"):
            continue
        last = r["path"].rstrip("/").rsplit("/", 1)[-1]
        if r["method"] in ("PUT", "PATCH", "DELETE") or (r["method"] == "POST" and last not in READ_POSTS):
            out.append((r["method"], r["path"], r["operation"]))
    return out


class Records:
    """The blobs of the run store this test writes to: run reports, latest, job state."""

    def __init__(self):
        from azure.core.exceptions import ResourceExistsError
        env = service.environment()
        self.container = env.clients.blob_service.get_container_client(env.settings.runs_container)
        try:
            self.container.create_container()
        except ResourceExistsError:
            pass

    def names(self) -> set[str]:
        return {b.name for b in self.container.list_blobs()
                if b.name.startswith(("runs/", "latest/", "state/"))}


def answer(resp: func.HttpResponse) -> dict[str, Any]:
    """The response as JSON; asserts it is JSON and leaks no trace."""
    text = resp.get_body().decode("utf-8")
    assert "Traceback" not in text and 'File "' not in text, text[:2000]
    assert resp.mimetype == "application/json"
    return json.loads(text)


def assert_refused(resp: func.HttpResponse, status: int, code: str | None = None,
                   fragment: str | None = None) -> dict:
    data = answer(resp)
    assert resp.status_code == status, (resp.status_code, data)
    error = data["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"].strip()
    assert len(error["message"]) <= 600, len(error["message"])  # clear, not an echo of the input
    if code:
        assert error["code"] == code, error
    if fragment:
        assert fragment in error["message"], error
    return error


# -- strategies: each part tagged with the fault it carries (None: valid) -----------------------

@dataclass(frozen=True)
class Part:
    value: Any
    fault: str | None = None  # a fragment the refusal's message must contain, or "" for any


HOSTILE_NAMES = [
    "", " ", ".", "..", "../dev-hours", "..%2fdev-hours", "%2e%2e", "%2e%2e%2fdev-hours",
    "dev-hours/../budget-check", "dev-hours/..", "/dev-hours", "dev-hours/", "dev-hours\x00",
    "\x00", "%00", "dev-hours%00", "Dev-Hours", "DEV-HOURS", "dev_hours", " dev-hours", "dev-hours ",
    "dev-hours\n", "dev-hours\r\n", "dev%2dhours", "\uff44\uff45\uff56-hours", "dev\u2010hours",
    "\u202edev-hours", "latest/dev-hours", "runs/../latest/dev-hours", "dev-hours.json", "*", "?",
    "dev-hours?dry_run=false", "dev-hours#x", "\\..\\dev-hours", "C:\\Windows", "~", "$(id)",
    "'; DROP TABLE runs; --", "<script>alert(1)</script>", "x" * 300, "\U0001f4a5" * 50,
]

valid_names = st.sampled_from(JOBS).map(lambda n: Part(n))
hostile_names = st.one_of(
    st.sampled_from(HOSTILE_NAMES).map(lambda n: Part(n, "unknown job")),
    st.text(max_size=80).filter(lambda n: n not in JOBS).map(lambda n: Part(n, "unknown job")),
    st.text(min_size=2000, max_size=20000, alphabet="./%a-\x00\u00e9")
      .map(lambda n: Part(n, "unknown job")),
    st.tuples(st.sampled_from(["../", "./", "%2e%2e/", "/", "..\\", "\x00", " ", "\t"]),
              st.sampled_from(JOBS), st.sampled_from(["", "/..", "/.", "%00", "\x00", "/run"]))
      .filter(lambda t: t[0] or t[2]).map(lambda t: Part("".join(t), "unknown job")),
)
job_names = st.one_of(valid_names, hostile_names)


def methods(allowed: str):
    """Any method, tagged: the route's own (in any ASCII case) is valid."""
    odd = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
           "MKCOL", "", " ", f" {allowed}", f"{allowed} ", f"{allowed}\x00", allowed.lower(),
           allowed.title(), allowed * 2]
    return st.one_of(st.just(allowed), st.sampled_from(odd),
                     st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop", max_size=10)) \
        .map(lambda m: Part(m, None if m.upper() == allowed else "use " + allowed))


def valid_methods(allowed: str):
    return methods(allowed).filter(lambda p: p.fault is None)


def hostile_methods(allowed: str):
    return methods(allowed).filter(lambda p: p.fault is not None)


# `now`: valid instants 2000-2200 with every kind of offset and spelling; hostile ones.
OFFSETS = [timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
           timezone(timedelta(hours=5, minutes=45)), timezone(timedelta(hours=-9, minutes=-30)),
           timezone(timedelta(hours=13, minutes=59, seconds=59)), timezone(timedelta(hours=-23, minutes=-59))]


TIMESPECS = {"iso": "auto", "minutes": "minutes", "micro": "microseconds"}


def spell(moment: datetime, how: str, sep: str, utc_as: str | None) -> tuple[str, datetime]:
    """An ISO-8601 spelling of ``moment`` and the UTC instant it names."""
    text = moment.isoformat(sep=sep, timespec=TIMESPECS[how])
    if utc_as:
        text = text.replace("+00:00", utc_as)
    named = moment.replace(second=0, microsecond=0) if how == "minutes" else moment
    return text, named.astimezone(timezone.utc)


valid_now = st.builds(
    spell,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31, 23, 59, 59),
                 timezones=st.one_of(st.sampled_from(OFFSETS), st.timezones())),
    st.sampled_from(list(TIMESPECS)), st.sampled_from(["T", " "]), st.sampled_from([None, "Z", "z"]),
)

NOW_FAULTS = {"naive": "must include a UTC offset", "range": "out of range"}
hostile_now = st.one_of(
    # naive: no offset
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31))
      .map(lambda m: Part(m.isoformat(), NOW_FAULTS["naive"])),
    # out of range, with an offset (incl. the extremes that overflow when converted to UTC)
    st.one_of(st.datetimes(max_value=datetime(1999, 12, 31, 23, 59)),
              st.datetimes(min_value=datetime(2201, 1, 1)))
      .flatmap(lambda m: st.sampled_from(OFFSETS).map(lambda z: Part(m.replace(tzinfo=z).isoformat(),
                                                                     NOW_FAULTS["range"]))),
    st.sampled_from([
        "2016-12-31T23:59:60Z", "2026-06-30T23:59:60+00:00",  # leap seconds
        "2026-11-27T18:00:00+24:00", "2026-11-27T18:00:00+99:00", "2026-11-27T18:00:00-25:00",
        "2026-11-27T18:00:00+1:00", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00Z",
        "2026-11-27T25:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T18:60:00Z", "2026-11-27T18:00:00ZZ",
        "2026-11-27T18:00:00 +01:00 x", "\uff12\uff10\uff12\uff16-11-27T18:00:00Z", "2026-11-27T18:00:00\x00Z",
        "now", "yesterday", "tomorrow 9am", "1732730400", "-1", "NaN", "", " ", "Z", "T", "+01:00",
        "2026-11-27T18:00:00Z" + " " * 60, "9" * 65,
    ]).map(lambda s: Part(s, "")),
    st.text(alphabet=st.characters(exclude_categories=("Nd",)), max_size=40).map(lambda s: Part(s, "")),
)
now_json_hostile = st.one_of(  # non-strings, in a JSON body only
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
).map(lambda v: Part(v, "now must be"))

TRUE_WORDS = ["true", "1", "yes", "TRUE", "True", " yes ", "Yes\n"]
FALSE_WORDS = ["false", "0", "no", "FALSE", " No "]
dry_run_valid_true = st.one_of(st.sampled_from(TRUE_WORDS), st.just(True)).map(lambda v: Part(v))
dry_run_false = st.one_of(st.sampled_from(FALSE_WORDS), st.just(False)).map(lambda v: Part(v))
dry_run_hostile = st.one_of(
    st.sampled_from(["", " ", "maybe", "y", "n", "on", "off", "t", "f", "2", "-1", "tru", "truee",
                     "\u0442rue", "true\x00", "null", "None", "dry", "false,true"]),
    st.text(max_size=12).filter(lambda s: s.strip().lower() not in {"true", "1", "yes", "false", "0", "no"}),
).map(lambda v: Part(v, "dry_run must be true or false"))
dry_run_json_hostile = st.one_of(  # null too: a present dry_run must say true or false
    st.none(), st.integers(), st.floats(allow_nan=False), st.lists(st.booleans(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.booleans(), max_size=2),
).map(lambda v: Part(v, "dry_run must be true or false"))

secret_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,40}", fullmatch=True)
BAD_OPTION_CHARS = ["/", "\\", " ", "\x00", "\n", "\t", "%", "?", "#", "*", "'", '"', "$", "\u00e9", "\u2010",
                    "\U0001f4a5", "..", "<", ";"]
force_hostile = st.one_of(
    st.sampled_from(["", "..", "../../etc/passwd", "..\\..\\boot.ini", "%2e%2e", "%2e%2e%2f", "a/../b",
                     "name\n", "name\r\n", "\nname", "x" * 257, "secret-rotation--pending/../x"]),
    st.tuples(secret_names, st.sampled_from(BAD_OPTION_CHARS), secret_names).map("".join),
).map(lambda v: Part(v, "must be a short plain string"))
force_json_hostile = st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
                               st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
                               st.floats(allow_nan=False)) \
    .map(lambda v: Part(v, "must be a short plain string"))

JUNK_KEYS = ["dry-run", "dryRun", "DRY_RUN", "Dry_Run", "dry_run ", " dry_run", "dry_run\n", "FORCE", "Force",
             "force ", "NOW", "now ", "colour", "__proto__", "constructor", "", " ", "\x00", "../force",
             "options", "option", "days", "json", "trigger", "run_id", "job", "name"]
junk_keys = st.one_of(st.sampled_from(JUNK_KEYS),
                      st.text(max_size=20).filter(lambda k: k not in ("code", "dry_run", "now", "force")))


@dataclass
class Field:
    key: str
    where: str  # query, body, both (the same value in each), conflict (different values)
    value: Any
    other: Any = None  # the body's value when where == "conflict"; the UTC instant of a valid now
    fault: str | None = None
    explicit_false: bool = False


def placements(body_ok: bool):
    return st.sampled_from(["query", "body", "both"] if body_ok else ["query"])


@st.composite
def valid_field(draw, job: str, body_ok: bool):
    """A field a run accepts: dry_run true or false, now, force, code."""
    where = draw(placements(body_ok))
    in_query = where != "body"
    keys = ["dry_run", "now", "code"] + (["force"] if job == FORCE_JOB else [])
    key = draw(st.sampled_from(keys))
    if key == "code":  # the function key: read by the host, ignored by the app
        return Field("code", where, draw(st.text(max_size=40)))
    if key == "dry_run":
        false = draw(st.booleans())
        part = draw(dry_run_false if false else dry_run_valid_true)
        value = str(part.value).lower() if in_query and not isinstance(part.value, str) else part.value
        return Field(key, where, value, explicit_false=false)
    if key == "now":
        text, instant = draw(valid_now)
        return Field(key, where, text, other=instant)
    return Field(key, where, draw(secret_names))


@st.composite
def hostile_field(draw, job: str, body_ok: bool):
    """A field a run refuses, with a fragment of the refusal's message ("" for any)."""
    kind = draw(st.sampled_from(["junk", "conflict", "dry_run", "now", "force"]
                                if body_ok else ["junk", "dry_run", "now", "force"]))
    where = draw(placements(body_ok))
    in_query = where != "body"
    if kind == "junk":
        value = draw(st.sampled_from(["true", "x", "1", "shopfront-db-password"]))
        return Field(draw(junk_keys), where, value, fault="takes no option")
    if kind == "conflict":
        key = draw(st.sampled_from(["dry_run", "now", "force"]))
        a, b = {"dry_run": ("true", "false"), "now": ("2026-11-27T18:00:00Z", "2026-11-28T18:00:00Z"),
                "force": ("alpha", "beta")}[key]
        if draw(st.booleans()):
            a, b = b, a
        fault = "given twice with different values" if key != "force" or job == FORCE_JOB else ""
        return Field(key, "conflict", a, b, fault=fault)
    if kind == "dry_run":
        part = draw(dry_run_hostile if in_query else st.one_of(dry_run_hostile, dry_run_json_hostile))
        return Field(kind, where, part.value, fault=part.fault)
    if kind == "now":
        part = draw(hostile_now if in_query else st.one_of(hostile_now, now_json_hostile))
        return Field(kind, where, part.value, fault=part.fault)
    if job != FORCE_JOB and draw(st.booleans()):  # a well-formed option the job does not take
        return Field("force", where, draw(secret_names), fault="takes no option force")
    part = draw(force_hostile if in_query else st.one_of(force_hostile, force_json_hostile))
    return Field("force", where, part.value, fault=part.fault if job == FORCE_JOB else "")


@dataclass
class RunRequest:
    method: Part
    name: Part
    query: dict[str, str]
    body: bytes
    expected: int
    fragment: str | None
    explicit_false: bool
    now: datetime | None


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


BODY_FAULTS = ["non_object", "garbage", "nested", "huge", "bad_utf8", "dup_keys"]


@st.composite
def run_requests(draw):
    """A manual-run request with the faults drawn first: none (a valid request, about one
    draw in six), or one to three of method, name, body, fields."""
    faulty = draw(st.sets(st.sampled_from(["method", "name", "body", "field"]), max_size=3))
    method = draw(hostile_methods("POST") if "method" in faulty else valid_methods("POST"))
    name = draw(hostile_names if "name" in faulty else valid_names)
    job = name.value if name.fault is None else draw(st.sampled_from(JOBS))
    shape = draw(st.sampled_from(BODY_FAULTS) if "body" in faulty else st.sampled_from(["fields", "fields", "empty"]))
    body_ok = shape in ("fields", "huge")
    chosen = draw(st.lists(valid_field(job, body_ok), max_size=3,
                           unique_by=lambda f: f.key))
    if "field" in faulty:
        bad = draw(hostile_field(job, body_ok).filter(lambda f: f.key not in {c.key for c in chosen}))
        chosen.insert(draw(st.integers(0, len(chosen))), bad)
    query = {f.key: f.value for f in chosen if f.where in ("query", "both", "conflict")}
    body_obj = {f.key: (f.other if f.where == "conflict" else f.value)
                for f in chosen if f.where in ("body", "both", "conflict")}
    faults = [f.fault for f in chosen if f.fault is not None]
    explicit_false = any(f.explicit_false for f in chosen)
    now = next((f.other for f in chosen if f.key == "now" and f.fault is None), None)

    if shape == "fields":
        raw = json.dumps(body_obj, ensure_ascii=draw(st.booleans())).encode() if body_obj or draw(st.booleans()) \
            else b""
    elif shape == "empty":
        raw = draw(st.sampled_from([b"", b" ", b"\n\t ", b"\r\n"]))
    elif shape == "non_object":
        raw = json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=5),
                                        st.none(), st.booleans(), st.floats(allow_nan=False)))).encode()
        faults.append("must be a JSON object")
    elif shape == "garbage":  # never JSON: starts with a control character in any encoding json detects
        raw = b"\x01" + draw(st.binary(max_size=200))
        faults.append("must be a JSON object")
    elif shape == "nested":
        depth = draw(st.integers(min_value=1, max_value=30000))
        raw = draw(st.sampled_from([nested(depth), '{"force": ' + nested(depth) + "}",
                                    '{"dry_run": ' + "{\"a\": " * depth + "1" + "}" * depth + "}"])).encode()
        faults.append("")
    elif shape == "bad_utf8":
        raw = b'{"force": "\xff\xfe\xc3\x28"}'
        faults.append("must be a JSON object")
    elif shape == "dup_keys":
        key, a, b = draw(st.sampled_from([("dry_run", "true", "false"), ("dry_run", "false", "true"),
                                          ("now", '"2026-11-27T18:00:00Z"', '"2030-01-01T00:00:00Z"'),
                                          ("force", '"alpha"', '"beta"')]))
        raw = f'{{"{key}": {a}, "{key}": {b}}}'.encode()
        faults.append("given twice")
    else:  # huge: a body over the limit, whatever it holds
        base = json.dumps(body_obj).encode()
        pad = draw(st.integers(min_value=MAX_BODY_BYTES + 1 - len(base), max_value=MAX_BODY_BYTES * 4))
        raw = draw(st.sampled_from([b" " * pad + base, base[:-1] + b" " * pad + base[-1:]]))
        assert len(raw) > MAX_BODY_BYTES

    if method.fault is not None:
        expected, fragment = 405, method.fault
    elif name.fault is not None:
        expected, fragment = 404, name.fault
    elif len(raw) > MAX_BODY_BYTES:
        expected, fragment = 413, "larger than"
    elif faults:
        expected, fragment = 400, (faults[0] if len(faults) == 1 else "")
    elif explicit_false or any(f.key == "force" for f in chosen):  # valid, but not for a function key
        expected, fragment = 403, "with the master key"
    else:
        expected, fragment = 200, None
    return RunRequest(method, name, query, raw, expected, fragment or None, explicit_false, now)


# -- the properties -----------------------------------------------------------------------------

def test_run_route_refuses_every_bad_request_and_runs_valid_ones_dry(app_env):
    records = Records()
    valid_runs = []

    @settings(SETTINGS, max_examples=150)
    @given(run_requests())
    def check(r: RunRequest):
        if r.expected == 200 and len(valid_runs) >= VALID_RUNS_PER_TEST:
            event("valid request not sent (cap reached)")
            return
        event(f"expected {r.expected}")
        app_env.sandbox.clear_log()
        before = records.names()
        resp = call("http_run_job", r.method.value, r.name.value, params=r.query, body=r.body)
        if r.expected != 200:
            assert_refused(resp, r.expected, fragment=r.fragment)
            assert app_env.sandbox.request_log() == [], "a refused request reached Azure"
            assert records.names() == before, "a refused request left a run record"
            return
        report = answer(resp)
        assert resp.status_code == 200, report
        valid_runs.append(r.name.value)
        assert report["job"] == r.name.value and report["trigger"] == "http"
        assert report["dry_run"] is True  # never a real run on this route
        if r.now is not None:
            reported = datetime.fromisoformat(report["now"].replace("Z", "+00:00"))
            assert reported == r.now, (report["now"], r.now)  # the instant asked for, in UTC
        assert writes(app_env) == [], "a dry run wrote to Azure"
        new = records.names() - before
        assert {n.split("/")[0] for n in new} <= {"runs", "latest"}, new  # no job state in a dry run
        assert any(n.startswith(f"runs/{r.name.value}/") for n in new), new

    check()


@st.composite
def latest_requests(draw):
    method = draw(methods("GET"))
    name = draw(job_names)
    params = draw(st.dictionaries(st.one_of(junk_keys, st.sampled_from(["dry_run", "now", "force", "code"])),
                                  st.text(max_size=30), max_size=3))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=300), st.just(b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}")))
    return method, name, params, body


def test_latest_route_refuses_bad_methods_and_names_and_reads_only_real_reports(app_env):
    seeded = service.run("sla-snapshot", trigger="cli", dry_run=True)
    records = Records()

    @SETTINGS
    @given(latest_requests())
    def check(req):
        method, name, params, body = req
        app_env.sandbox.clear_log()
        before = records.names()
        resp = call("http_latest_run", method.value, name.value, params=params, body=body)
        if method.fault is not None:
            assert_refused(resp, 405, "MethodNotAllowed", method.fault)
        elif name.fault is not None:
            assert_refused(resp, 404, "UnknownJob", "unknown job")
        elif name.value == "sla-snapshot":
            report = answer(resp)
            assert resp.status_code == 200 and report["run_id"] == seeded["run_id"]
        else:
            assert_refused(resp, 404, "NoRuns", "has not run yet")
        assert app_env.sandbox.request_log() == []
        assert records.names() == before

    check()


def test_list_route_answers_get_only_and_ignores_query_and_body(app_env):
    records = Records()

    @settings(SETTINGS, max_examples=60)
    @given(methods("GET"),
           st.dictionaries(st.one_of(junk_keys, st.sampled_from(["dry_run", "now", "force", "code"])),
                           st.text(max_size=30), max_size=3),
           st.one_of(st.just(b""), st.binary(max_size=300), st.just(b"[" * 5000 + b"]" * 5000)))
    def check(method, params, body):
        app_env.sandbox.clear_log()
        before = records.names()
        resp = call("http_list_jobs", method.value, params=params, body=body)
        if method.fault is not None:
            assert_refused(resp, 405, "MethodNotAllowed", method.fault)
        else:
            data = answer(resp)
            assert resp.status_code == 200 and [j["name"] for j in data["jobs"]] == list(JOBS)
        assert writes(app_env) == []
        assert records.names() == before

    check()


# -- focused cases (each a bug this suite found, or a boundary) -----------------------------------

def run(name: str = "budget-check", **kw) -> func.HttpResponse:
    return call("http_run_job", "POST", name, **kw)


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,
    b'{"force": ' + b"[" * 20000 + b"]" * 20000 + b"}",
    b'{"dry_run": ' + b'{"a": ' * 8000 + b"1" + b"}" * 8000 + b"}",
])
def test_a_deeply_nested_body_is_a_400_not_a_500(app_env, body):
    # json.loads raised RecursionError, which the API answered as a 500.
    assert len(body) <= MAX_BODY_BYTES
    assert_refused(run(body=body), 400, "BadRequest", "nested")
    assert service.latest("budget-check") is None


@pytest.mark.parametrize("body, key", [
    (b'{"dry_run": true, "dry_run": false}', "dry_run"),
    (b'{"dry_run": false, "dry_run": true}', "dry_run"),
    (b'{"now": "2026-11-27T18:00:00Z", "now": "2030-01-01T00:00:00Z"}', "now"),
])
def test_a_key_given_twice_in_the_body_with_different_values_is_refused(app_env, body, key):
    # json.loads kept the last value silently: {"dry_run": true, "dry_run": false} was a real run.
    assert_refused(run(body=body), 400, "BadRequest", f"'{key}' is given twice")
    assert writes(app_env) == [] and service.latest("budget-check") is None


def test_a_key_given_twice_in_the_body_with_the_same_value_is_fine(app_env):
    resp = run(body=b'{"dry_run": true, "dry_run": true}')
    assert resp.status_code == 200 and answer(resp)["dry_run"] is True


@pytest.mark.parametrize("value", ["shopfront-db-password\n", "shopfront-db-password\r\n"])
def test_an_option_with_a_trailing_newline_is_refused(app_env, value):
    # The pattern ended in `$`, which also matches before a final newline.
    assert_refused(run("secret-rotation", body=json.dumps({"force": value}).encode()), 400, "BadRequest",
                   "must be a short plain string")
    assert service.latest("secret-rotation") is None


def test_a_very_long_unknown_job_name_is_a_short_404(app_env):
    error = assert_refused(run("../" * 5000 + "dev-hours"), 404, "UnknownJob", "unknown job")
    assert "dev-hours, budget-check" in error["message"]  # still says which jobs there are


def test_the_body_limit_is_64_kib_exactly(app_env):
    at_limit = b'{"dry_run": true}'.ljust(MAX_BODY_BYTES, b" ")
    resp = run(body=at_limit)
    assert resp.status_code == 200 and answer(resp)["dry_run"] is True
    assert_refused(run(body=at_limit + b" "), 413, "TooLarge", "larger than")
