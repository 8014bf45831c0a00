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
