"""deploy/: the systemd units keep their sandbox and run commands Beacon has; the Containerfile runs as a
non-root user with its data on the /data volume and a health check on /healthz. Checked offline."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.app import HEALTH_PATH
from bot.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BEACON = "/opt/beacon/.venv/bin/beacon"
SERVICES = ["beacon.service", "beacon-backup.service", "beacon-purge.service"]

# What every unit's sandbox must keep (systemd's own spelling of "on" is "yes").
HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit: section → key → every value given, in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{name}: {line!r} is outside a section"
        assert "=" in line, f"{name}: {line!r} is not key=value"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def beacon_argv(exec_start: str) -> list[str]:
    """The arguments given to `beacon` in an ExecStart line (directly, or inside `sh -c '...'`)."""
    words = shlex.split(exec_start.replace("%%", "%").replace("$$", "$"))
    if words[:2] == ["/bin/sh", "-c"]:
        words = shlex.split(words[2])
        words = words[words.index("exec") + 1 :]
    assert words[0] == BEACON, exec_start
    return words[1:]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_as_the_beacon_user_in_a_sandbox(name):
    """Dedicated user, settings from an EnvironmentFile, the database in its StateDirectory, and every
    hardening option of the main unit."""
    service = unit(name)["Service"]
    assert service["User"] == ["beacon"]
    assert service["Group"] == ["beacon"]
    assert service["EnvironmentFile"] == ["/etc/beacon/beacon.env"]
    assert service["Environment"] == ["BEACON_DATABASE=/var/lib/beacon/beacon.db"]
    assert "beacon" in service["StateDirectory"][0].split()
    assert service["StateDirectoryMode"] == ["0700"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{name}: {key}"
    assert service["SystemCallFilter"][0] == "@system-service"
    assert set(service["SystemCallFilter"][1].removeprefix("~").split()) >= {"@privileged", "@resources"}


def test_the_bot_service_restarts_on_failure_and_reaches_only_internet_and_local_sockets():
    service = unit("beacon.service")["Service"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartSec"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert set(service["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert unit("beacon.service")["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", ["beacon-backup.service", "beacon-purge.service"])
def test_the_maintenance_services_are_one_shots_without_network(name):
    service = unit(name)["Service"]
    assert service["Type"] == ["oneshot"]
    assert service["PrivateNetwork"] == ["yes"]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX"]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_a_beacon_command_that_exists(name):
    """The units' command lines parse with Beacon's own parser (a renamed command or option fails here)."""
    argv = beacon_argv(unit(name)["Service"]["ExecStart"][0])
    args = build_parser().parse_args(argv)
    assert args.command == {"beacon.service": "run", "beacon-backup.service": "backup"}.get(name, "purge")


def test_backups_are_written_to_their_own_state_directory_with_a_fresh_name():
    service = unit("beacon-backup.service")["Service"]
    argv = beacon_argv(service["ExecStart"][0])
    assert "--force" not in argv
    assert argv[1].startswith("/var/lib/beacon-backups/beacon-$(date -u +%Y%m%dT%H%M%SZ)")
    assert service["StateDirectory"] == ["beacon beacon-backups"]
    assert "-delete" in service["ExecStartPost"][0]


@pytest.mark.parametrize("name", ["beacon-backup", "beacon-purge"])
def test_each_timer_runs_its_service_daily_and_catches_up_after_downtime(name):
    timer = unit(f"{name}.timer")
    assert (DEPLOY / f"{name}.service").is_file()
    assert timer["Timer"]["OnCalendar"][0].startswith("*-*-* ")
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


def test_the_purge_runs_before_the_backup():
    """A backup taken after the purge holds nothing the retention has already erased."""

    def time_of(name: str) -> str:
        return unit(name)["Timer"]["OnCalendar"][0].split()[1]

    assert time_of("beacon-purge.timer") < time_of("beacon-backup.timer")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("name", SERVICES)
def test_systemd_rates_every_service_at_most_low_exposure(name):
    """`systemd-analyze security --offline` scores the sandbox (0 best, 10 worst); 2 is "OK"."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(DEPLOY / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "Unknown option" in result.stderr or "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze cannot score a unit file offline")
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= 2.0


# --- the Containerfile ---------------------------------------------------------------------------------


def containerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Containerfile, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_image_is_python_3_11_slim_and_runs_as_a_non_root_user():
    instructions = containerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "the image must switch to a non-root user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # Nothing runs as root after the switch but the process itself.
    last_user = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in instructions[last_user:])


def test_the_database_lives_on_the_data_volume():
    instructions = containerfile()
    assert ("VOLUME", '["/data"]') in instructions
    envs = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "BEACON_DATABASE=/data/beacon.db" in envs
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "mkdir -m 0700 /data" in runs
    assert "chown beacon:beacon /data" in runs


def test_the_image_carries_the_catalogs_and_compiles_its_code_for_a_read_only_root():
    """Locales are read beside the code, and no bytecode is written at run time."""
    instructions = containerfile()
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    assert "locales ./locales" in copies
    for package in ("bot", "handlers", "storage", "sandbox"):
        assert f"{package} ./{package}" in copies
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install --editable ." in runs
    assert "compileall" in runs
    assert not any(keyword == "ADD" for keyword, _ in instructions)


def test_the_health_check_asks_healthz_on_the_port_the_webhook_listens_on():
    instructions = containerfile()
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert f"http://127.0.0.1:8443{HEALTH_PATH}" in healthchecks[0]
    (command,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert "--webhook-url" in command
    assert "--port 8443" in command
    assert command.startswith('["sh", "-c", "exec beacon run ')
    assert ("EXPOSE", "8443") in instructions


def test_the_deploy_readme_describes_every_file():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for path in DEPLOY.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme, path.name
