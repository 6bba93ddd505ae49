"""Issue 17: the deployment files in deploy/ do what they say.

* ``systemd-analyze verify`` accepts both units (and ``security --offline`` keeps their
  exposure where docs/deployment.md §systemd says), when systemd-analyze is installed;
* the units' own ``ExecStart=`` command lines run: credentials laid out as ``LoadCredential=``
  lays them (a private directory, ``$CREDENTIALS_DIRECTORY``/``%d``), the rendezvous serving TLS
  with the certificate, key, secret and metrics token from it, the exec-server registering
  through it with the bearer and CA from its own directory, its ``/readyz`` ready on its metrics
  port, both logging JSON and draining on SIGTERM; only the addresses are changed to loopback;
* the Prometheus example and the Dockerfile hold together (what can be checked without
  Prometheus or a container engine, neither of which runs here).

Process-level and independent of the build: compiled pass only.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import execrelay
from execrelay import _accel

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
RENDEZVOUS_UNIT = UNITS / "execrelay-rendezvous.service"
EXECUTOR_UNIT = UNITS / "execrelay-exec-server.service"
HOSTNAME = "deploy-test-host"      # what %H expands to here
INSTALLED_AT = "/usr/local/bin/execrelay"
EXECRELAY = str(Path(sys.executable).with_name("execrelay"))

pytestmark = [
    pytest.mark.skipif(_accel.FORCE_PURE, reason="deployment files do not depend on the build: "
                                                "checked once, in the compiled pass"),
    pytest.mark.timeout(120),
]


# -- unit files -------------------------------------------------------------------------------

def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (a key may repeat); continuation lines joined."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path}: {line!r} outside a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    assert not pending, f"{path}: ends in a continuation"
    return sections


def credentials(service: dict[str, list[str]]) -> dict[str, str]:
    """LoadCredential=ID:PATH -> {ID: PATH}."""
    out = {}
    for value in service.get("LoadCredential", []):
        cred_id, sep, path = value.partition(":")
        assert sep and cred_id and path.startswith("/"), value
        out[cred_id] = path
    return out


def exec_argv(service: dict[str, list[str]], creds_dir: Path, **replace: str) -> list[str]:
    """The ExecStart= command line with the specifiers it uses expanded (%d: the credentials
    directory, %H: the host name), run with this checkout's ``execrelay``; ``replace`` swaps
    option values (``listen="127.0.0.1:0"``)."""
    (line,) = service["ExecStart"]
    unknown = set(re.findall(r"%(.)", line)) - {"d", "H", "%"}
    assert not unknown, f"specifiers this test does not expand: {unknown}"
    line = line.replace("%d", str(creds_dir)).replace("%H", HOSTNAME).replace("%%", "%")
    argv = shlex.split(line)
    assert argv[0] == INSTALLED_AT, argv[0]
    argv[0] = EXECRELAY
    for option, value in replace.items():
        flag = "--" + option.replace("_", "-")
        assert flag in argv, f"{flag} not in {argv}"
        argv[argv.index(flag) + 1] = value
    return argv


def load_credentials(unit: Path, sources: dict[str, bytes], into: Path) -> Path:
    """Do what systemd does for the unit's LoadCredential= lines: each source file (here the
    bytes the test made for that path) copied, by id, into a private directory."""
    creds = credentials(parse_unit(unit)["Service"])
    assert set(creds.values()) <= set(sources), f"no test content for {set(creds.values()) - set(sources)}"
    into.mkdir(mode=0o700)
    for cred_id, path in creds.items():
        target = into / cred_id
        target.write_bytes(sources[path])
        target.chmod(0o400)
    return into


# -- a throwaway CA and leaf for 127.0.0.1 (cryptography is a dependency) ---------------------

def _pki() -> dict[str, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
             ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("execrelay deploy test CA", ca_key, "execrelay deploy test CA", ca_key, ca=True)
    leaf = cert("rendezvous", leaf_key, "execrelay deploy test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    return {
        "ca": ca.public_bytes(pem),
        "cert": leaf.public_bytes(pem),
        "key": leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }


# -- running the command lines ----------------------------------------------------------------

def _env(creds_dir: Path) -> dict[str, str]:
    """What systemd gives the service: $CREDENTIALS_DIRECTORY, no secret in the environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("EXECRELAY_RENDEZVOUS_SECRET", "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN")}
    env["CREDENTIALS_DIRECTORY"] = str(creds_dir)
    return env


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as systemctl stop sends it; (exit status, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return -9, err
    return proc.returncode, err


def _scrape(url: str, token: str | None, ca: Path) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    context = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(request, timeout=10, context=context) as resp:
        return resp.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()
    except OSError as exc:       # not listening yet
        return 0, str(exc)


def _events(stderr: str) -> list[dict[str, object]]:
    """The JSON log lines (``--log-format json``); the executor's upstream-compatible lines are
    plain text beside them (docs/operations.md §Logs)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def _option(argv: list[str], flag: str) -> str:
    assert flag in argv, f"{flag} not in {argv}"
    return argv[argv.index(flag) + 1]


def _sample(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return None if match is None else float(match.group(1))


def test_unit_command_lines_run_with_credentials_from_files(tmp_path: Path) -> None:
    pki = _pki()
    secret = secrets.token_hex(32).encode()
    metrics_token = secrets.token_urlsafe(24)
    rendezvous_sources = {
        "/etc/execrelay/rendezvous-secret": secret + b"\n",
        "/etc/execrelay/metrics-token": metrics_token.encode() + b"\n",
        "/etc/execrelay/rendezvous.pem": pki["cert"],
        "/etc/execrelay/rendezvous.key": pki["key"],
    }
    rdv_creds = load_credentials(RENDEZVOUS_UNIT, rendezvous_sources, tmp_path / "rdv-creds")
    rdv_argv = exec_argv(parse_unit(RENDEZVOUS_UNIT)["Service"], rdv_creds, listen="127.0.0.1:0")
    rdv = subprocess.Popen(rdv_argv, env=_env(rdv_creds), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    executor = None
    try:
        assert rdv.stdout is not None
        first = rdv.stdout.readline()
        match = re.fullmatch(r"listening on (https://127\.0\.0\.1:\d+)\n", first)
        assert match, f"rendezvous said {first!r}; stderr: {_stop(rdv)[1]}"
        base = match.group(1)
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(pki["ca"])

        # the executor's bearer, minted as the unit's comment says, with the same secret file
        minted = subprocess.run(
            [EXECRELAY, "rendezvous", "token", "--role", "executor", "--executor-id", HOSTNAME,
             "--secret-file", str(rdv_creds / "rendezvous-secret")],
            env=_env(rdv_creds), capture_output=True, text=True, timeout=60, check=True).stdout
        bearer = minted.strip()
        executor_sources = {
            "/etc/execrelay/registration-bearer": bearer.encode() + b"\n",
            "/etc/execrelay/rendezvous-ca.pem": pki["ca"],
        }
        ex_creds = load_credentials(EXECUTOR_UNIT, executor_sources, tmp_path / "exec-creds")
        ops = f"http://127.0.0.1:{_free_port()}"
        ex_argv = exec_argv(parse_unit(EXECUTOR_UNIT)["Service"], ex_creds, remote=base,
                            metrics_listen=ops.split("//")[1])
        executor = subprocess.Popen(ex_argv, env=_env(ex_creds), cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        # /metrics wants the token from the credentials directory
        with pytest.raises(urllib.error.HTTPError) as refused:
            _scrape(f"{base}/metrics", None, ca_file)
        assert refused.value.code == 401
        deadline = time.monotonic() + 60
        while True:
            text = _scrape(f"{base}/metrics", metrics_token, ca_file)
            connected = _sample(text, "execrelay_rendezvous_connections", '{role="executor"}')
            if connected == 1 or time.monotonic() > deadline or executor.poll() is not None:
                break
            time.sleep(0.2)
        assert connected == 1, f"the executor did not connect:\n{text}\n{_stop(executor)[1]}"
        assert _sample(text, "execrelay_rendezvous_registrations_total") == 1
        assert _sample(text, "execrelay_build_info",
                       f'{{version="{execrelay.__version__}",compiled="true"}}') == 1

        # the executor's --metrics-listen port: /readyz ready once registered, /metrics open
        while (ready := _http(f"{ops}/readyz")) != (200, "ready") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready == (200, "ready"), f"{ready}\n{_stop(executor)[1]}"
        status, scrape = _http(f"{ops}/metrics")
        assert status == 200 and _sample(scrape, "execrelay_build_info",
                                         f'{{version="{execrelay.__version__}",compiled="true"}}') == 1, scrape

        ex_status, ex_err = _stop(executor)
        rdv_status, rdv_err = _stop(rdv)
        assert (ex_status, rdv_status) == (0, 0), f"exec-server: {ex_err}\nrendezvous: {rdv_err}"
        # SIGTERM drained both (nothing open: at once), logged as JSON events
        for name, err in (("exec-server", ex_err), ("rendezvous", rdv_err)):
            events = _events(err)
            msgs = [e["msg"] for e in events]
            assert "drain started" in msgs and "drain finished" in msgs, (name, err)
            assert {e["level"] for e in events} <= {"info", "warning"}, (name, err)
        for err in (ex_err, rdv_err):     # no secret ever reaches a log
            for value in (secret.decode(), metrics_token, bearer):
                assert value not in err
    finally:
        for proc in (executor, rdv):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_units_keep_secrets_off_the_command_line_and_environment() -> None:
    """Every secret option of the units names a credential file; no Environment= carries one."""
    for unit in (RENDEZVOUS_UNIT, EXECUTOR_UNIT):
        service = parse_unit(unit)["Service"]
        creds = credentials(service)
        argv = shlex.split(service["ExecStart"][0])
        files = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg.endswith("-file") or arg.startswith("--tls-")}
        assert files, unit
        assert files == {f"%d/{cred_id}" for cred_id in creds}, (unit.name, files, creds)
        for value in service.get("Environment", []):
            assert not re.search(r"SECRET|TOKEN|BEARER|KEY", value, re.I), value
        assert service["NoNewPrivileges"] == ["yes"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture()
def installed_units(tmp_path: Path) -> list[Path]:
    """The units as installed: ExecStart= names an executable that exists (verify checks)."""
    out = []
    for unit in (RENDEZVOUS_UNIT, EXECUTOR_UNIT):
        target = tmp_path / unit.name
        target.write_text(unit.read_text().replace(INSTALLED_AT, EXECRELAY))
        out.append(target)
    return out


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(installed_units: list[Path]) -> None:
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", *map(str, installed_units)],
                          capture_output=True, text=True, timeout=60)
    # an unknown key or a bad value is only a warning (exit 0): any output is a failure
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


#: the highest ``systemd-analyze security`` exposure each unit may have (docs/deployment.md)
MAX_EXPOSURE = {"execrelay-rendezvous.service": 2.0, "execrelay-exec-server.service": 5.0}


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_security_exposure(installed_units: list[Path]) -> None:
    for unit in installed_units:
        done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
                              capture_output=True, text=True, timeout=60)
        if "--offline" in done.stderr and done.returncode != 0:
            pytest.skip(f"this systemd-analyze has no --offline: {done.stderr.strip()}")
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
        assert match, done.stdout + done.stderr
        assert float(match.group(1)) <= MAX_EXPOSURE[unit.name], done.stdout


def test_sysusers_creates_the_exec_server_user() -> None:
    service = parse_unit(EXECUTOR_UNIT)["Service"]
    (line,) = [ln for ln in (UNITS / "execrelay.sysusers.conf").read_text().splitlines()
               if ln and not ln.startswith("#")]
    kind, name, _, _, home, _ = shlex.split(line)
    assert (kind, name) == ("u", service["User"][0])
    assert home == service["WorkingDirectory"][0] == f"/var/lib/{service['StateDirectory'][0]}"


# -- Prometheus and the Dockerfile ------------------------------------------------------------

def test_prometheus_example_scrapes_both_components() -> None:
    import yaml   # dev extra
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"execrelay-rendezvous", "execrelay-exec-server"}
    rdv = jobs["execrelay-rendezvous"]
    assert rdv["scheme"] == "https" and rdv["metrics_path"] == "/metrics"
    assert rdv["authorization"]["credentials_file"]       # the --metrics-token-file contents
    # the rendezvous target is the port the unit listens on
    listen = exec_argv(parse_unit(RENDEZVOUS_UNIT)["Service"], Path("/creds"))
    port = listen[listen.index("--listen") + 1].rsplit(":", 1)[1]
    assert all(t.endswith(f":{port}") for t in rdv["static_configs"][0]["targets"])
    # the executor targets are the port of the unit's --metrics-listen
    ex = jobs["execrelay-exec-server"]
    ex_port = _option(exec_argv(parse_unit(EXECUTOR_UNIT)["Service"], Path("/creds")),
                      "--metrics-listen").rsplit(":", 1)[1]
    assert ex["scheme"] == "http" and ex["metrics_path"] == "/metrics"
    assert all(t.endswith(f":{ex_port}") for t in ex["static_configs"][0]["targets"])


def test_units_drain_within_their_stop_timeout() -> None:
    """Both units drain on SIGTERM (--drain-timeout) for less than TimeoutStopSec, after which
    systemd kills the cgroup, and log JSON."""
    for unit in (RENDEZVOUS_UNIT, EXECUTOR_UNIT):
        service = parse_unit(unit)["Service"]
        argv = exec_argv(service, Path("/creds"))
        drain = float(_option(argv, "--drain-timeout"))
        (stop,) = service["TimeoutStopSec"]
        assert 0 < drain < float(stop), (unit.name, drain, stop)
        assert _option(argv, "--log-format") == "json", unit.name


def _stages(dockerfile: str) -> list[tuple[str, str, list[str]]]:
    """(base image, stage name, instructions) per FROM; continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    stages: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"FROM (\S+)(?: AS (\S+))?", line)
        if match:
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            stages.append((base, match.group(2) or "", []))
        elif stages:
            stages[-1][2].append(line)
    return stages


def test_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() -> None:
    stages = _stages((DEPLOY / "Dockerfile").read_text())
    assert len(stages) == 2, stages
    (build_base, build_name, build), (run_base, _, run) = stages
    assert build_base == run_base, "the wheel is built for the runtime image's Python ABI"
    # the builder has a compiler and builds with every extension required
    assert any("apt-get install" in i and " gcc" in i for i in build)
    assert any("EXECRELAY_REQUIRE_EXT=1 pip wheel" in i for i in build)
    copied = [i.split()[1:-1] for i in build if i.startswith("COPY ")]
    for sources in copied:               # every COPY source exists in the checkout
        for source in sources:
            assert (ROOT / source).exists(), source
    needed = {"pyproject.toml", "setup.py", "src", "ext", "README.md"}   # what setup.py reads
    assert needed <= {s for sources in copied for s in sources}
    # the runtime installs that wheel without an index or a compiler, then runs as a user
    assert not any("gcc" in i for i in run)
    install = [i for i in run if "pip install" in i]
    assert install and f"from={build_name}" in install[0] and "--no-index" in install[0]
    user = [i.split()[1] for i in run if i.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    assert run[-2:] == ['ENTRYPOINT ["execrelay"]', 'CMD ["--help"]']
    assert json.loads(run[-2].split(" ", 1)[1]) == ["execrelay"]
