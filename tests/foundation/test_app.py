"""What the Functions host would read from the app, without the host:
the functions it indexes, their bindings, and a cold start free of heavy SDKs."""
import json
import subprocess
import sys

from jobs.registry import JOBS
from tests.app_functions import indexed


def _functions():
    return {name: json.loads(f.get_function_json()) for name, f in indexed().items()}


def test_one_timer_per_job_reading_its_schedule_from_app_settings():
    functions = _functions()
    timers = {name: fn for name, fn in functions.items()
              if fn["bindings"][0]["type"] == "timerTrigger"}
    # besides, secret-rotation's resume timer (tests/secret_rotation/test_resume.py)
    assert timers.pop("timer_secret_rotation_resume")
    assert len(timers) == len(JOBS) == 4
    for spec in JOBS.values():
        binding = timers["timer_" + spec.name.replace("-", "_")]["bindings"][0]
        assert binding["schedule"] == f"%{spec.schedule_setting}%"
        assert not binding.get("runOnStartup")


def test_retry_policies_only_where_a_retry_is_safe():
    for spec in JOBS.values():
        policy = indexed()["timer_" + spec.name.replace("-", "_")].get_settings_dict("retry_policy")
        assert bool(policy) == spec.retry_safe, spec.name
        if policy:
            assert policy["strategy"] == "fixed_delay" and int(policy["max_retry_count"]) <= 3


def test_http_routes_are_never_anonymous():
    functions = _functions()
    routes = {}
    for fn in functions.values():
        trigger = fn["bindings"][0]
        if trigger["type"] == "httpTrigger":
            routes[trigger["route"]] = (trigger["methods"], trigger["authLevel"])
    assert routes == {"jobs": (["GET"], "FUNCTION"), "jobs/{name}/run": (["POST"], "FUNCTION"),
                      "jobs/{name}/runs/latest": (["GET"], "FUNCTION"),
                      # real runs and force: the master key only
                      "privileged/jobs/{name}/run": (["POST"], "ADMIN")}
    # The host refuses routes starting with "admin" (its own /admin API), even under /api.
    assert not [r for r in routes if r.lower().startswith("admin")]


def test_function_names_are_unique():
    assert len(indexed()) == 9  # four jobs, the rotation resume timer, four HTTP routes; the SDK refuses duplicates


HEAVY = ("azure.mgmt", "azure.keyvault", "azure.storage", "azure.monitor", "azure.identity",
         "pydantic", "holidays")


def test_importing_the_app_imports_no_heavy_sdk_and_does_no_io():
    code = ("import sys, socket\n"
            "def refuse(*a, **k): raise AssertionError('network I/O at import')\n"
            "socket.socket.connect = refuse\n"
            "import function_app\n"
            f"print([m for m in sys.modules if m.startswith({HEAVY!r})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_host_json_pins_the_extension_bundle_and_a_timeout():
    host = json.load(open("host.json"))
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert host["functionTimeout"]
    assert host["logging"]["logLevel"]
