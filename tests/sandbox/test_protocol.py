"""The sandbox's shared protocol: bearer auth, api-version, paging, faults,
the request log, through the real SDK clients where one exists."""
import json
import ssl
import urllib.error
import urllib.request


SITE_LIST = "/subscriptions/{sub}/providers/Microsoft.Web/sites?api-version=2024-04-01"


def _get(stack, path, token=None):
    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(stack.sandbox.url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def test_arm_refuses_requests_without_a_bearer_token(app_env):
    status, headers, body = _get(app_env, SITE_LIST.format(sub="s1"))
    assert status == 401
    assert body["error"]["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in headers


def test_arm_refuses_a_wrong_token(app_env):
    status, _, body = _get(app_env, SITE_LIST.format(sub="s1"), token="not-the-token")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")


def test_arm_requires_api_version(app_env):
    status, _, body = _get(app_env, "/subscriptions/s1/providers/Microsoft.Web/sites",
                           token=app_env.sandbox.token)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")


def test_unknown_paths_answer_arm_errors(app_env):
    status, _, body = _get(app_env, "/subscriptions/s1/providers/Microsoft.Nope/things?api-version=1",
                           token=app_env.sandbox.token)
    assert status == 404 and body["error"]["code"] == "NoRegisteredProviderFound"


def test_control_endpoints_need_no_auth_and_log_requests(app_env):
    _get(app_env, SITE_LIST.format(sub="s1"))
    status, _, body = _get(app_env, "/_sandbox/requests")
    assert status == 200
    assert body["requests"][-1]["status"] == 401
    assert body["requests"][-1]["path"] == "/subscriptions/s1/providers/Microsoft.Web/sites"
    status, _, state = _get(app_env, "/_sandbox/state")
    assert status == 200 and "resources" in state


def test_faults_are_deterministic_with_a_seed(app_env):
    faults = app_env.sandbox.faults

    def draws():
        faults.configure({"seed": 7, "rules": [{"operation": "*", "rate_429": 0.3, "rate_500": 0.2}]})
        return [faults.draw("Microsoft.Web/sites/list")[1] for _ in range(50)]

    first = draws()
    assert first == draws()
    assert {"429", "500", None} <= set(first)


def test_the_link_base_fault_makes_answers_link_off_host(app_env):
    sub = "00000000-0000-0000-0000-000000000001"
    app_env.sandbox.faults.configure({"link_base": "https://attacker.example"})
    status, _, body = _get(app_env, SITE_LIST.format(sub=sub), token=app_env.sandbox.token)
    assert status == 200 and body["nextLink"].startswith("https://attacker.example/subscriptions/")
    app_env.sandbox.faults.configure({})
    _, _, body = _get(app_env, SITE_LIST.format(sub=sub), token=app_env.sandbox.token)
    assert body["nextLink"].startswith(app_env.sandbox.url + "/")
    ctx = ssl.create_default_context(cafile=str(app_env.ca_file))
    req = urllib.request.Request(app_env.sandbox.url + "/_sandbox/faults", method="POST",
                                 data=json.dumps({"link_base": "attacker.example/x"}).encode())
    try:
        urllib.request.urlopen(req, context=ctx)
        raise AssertionError("a link_base without a scheme was accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 400
