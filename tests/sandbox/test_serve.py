"""`python -m sandbox serve`: ready in a few seconds, writes sandbox.env with every
setting the jobs need, serves the real SDK, and stops all it started on SIGTERM."""
import os
import signal
import subprocess
import sys
import time

from sandbox.stack import read_env_file


def test_serve_writes_its_settings_and_stops_everything_on_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "serve", "--state", str(state),
                             "--no-databases"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (state / "sandbox.env").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "sandbox.env not written within 30 s"
            time.sleep(0.1)
        env = read_env_file(state / "sandbox.env")
        for key in ("OPS_ARM_ENDPOINT", "OPS_METRICS_ENDPOINT", "OPS_LOGS_ENDPOINT", "OPS_KEYVAULT_URL",
                    "OPS_CA_BUNDLE", "OPS_CREDENTIAL", "OPS_SANDBOX_TOKEN", "AzureWebJobsStorage",
                    "OPS_SUBSCRIPTIONS"):
            assert env.get(key), key
        assert env["OPS_ARM_ENDPOINT"].startswith("https://127.0.0.1:")

        # The sourced settings work for the real SDK, as a shell user would use them.
        out = subprocess.run([sys.executable, "-c",
                              "from jobs.settings import load_settings; from jobs.clients import Clients;"
                              "c = Clients(load_settings());"
                              "print(len(list(c.web('00000000-0000-0000-0000-000000000001').web_apps.list())))"],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout) > 0
        children = subprocess.run(["pgrep", "-P", str(proc.pid)],
                                  capture_output=True, text=True).stdout.split()
        assert children  # Azurite
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert "stopped" in proc.stdout.read()
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", \
            f"process {pid} left behind after SIGTERM"
