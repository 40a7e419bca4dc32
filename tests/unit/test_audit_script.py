"""scripts/audit.py's decisions, on canned pip-audit and PyPI JSON (no network, no subprocess)."""

from __future__ import annotations

import importlib.util
import io
import sys
import urllib.error
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("beacon_audit_script", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


audit = _load()
PROJECT = "beacon"
NOT_FOUND = "Dependency not found on PyPI and could not be audited: {name} ({version})"


def skipped(name: str, version: str) -> dict[str, str]:
    """A dependency as pip-audit's JSON reports it when PyPI's per-version API answers 404."""
    return {"name": name, "skip_reason": NOT_FOUND.format(name=name, version=version)}


def pip_audit_output(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": [*deps, {"name": PROJECT, "skip_reason": "distribution marked as editable"}]}


def advisory(id_: str, *aliases: str, fixed_in: tuple[str, ...] = (), withdrawn: str | None = None):
    return {
        "aliases": list(aliases),
        "details": "...",
        "fixed_in": list(fixed_in),
        "id": id_,
        "link": f"https://osv.dev/vulnerability/{id_}",
        "source": "osv",
        "summary": None,
        "withdrawn": withdrawn,
    }


def project_json(latest: str, *advisories: dict[str, Any]) -> dict[str, Any]:
    """PyPI's /pypi/<name>/json, trimmed: advisories are those of the latest release only."""
    return {"info": {"version": latest}, "releases": {}, "urls": [], "vulnerabilities": list(advisories)}


def test_clean_latest_releases_pass():
    installed = {"aiohttp": "3.14.5", "tqdm": "4.70.1", PROJECT: "0.1.0"}
    output = pip_audit_output(skipped("aiohttp", "3.14.5"), skipped("tqdm", "4.70.1"))
    projects = {"aiohttp": project_json("3.14.5"), "tqdm": project_json("4.70.1")}

    report = audit.decide(installed, output, projects, PROJECT)

    assert report.by_fallback == ["aiohttp==3.14.5", "tqdm==4.70.1"]
    assert report.by_pip_audit == []
    assert report.not_checked == []  # audited ones need no fallback
    assert report.vulnerabilities == []
    assert audit.exit_code(report) == 0
    assert "OK: no known vulnerabilities in the 2 of 2 packages checked" in audit.format_report(report)


def test_vulnerable_latest_release_fails():
    installed = {"ecdsa": "0.19.2", "tqdm": "4.70.1"}
    output = pip_audit_output(skipped("ecdsa", "0.19.2"), skipped("tqdm", "4.70.1"))
    projects = {
        "ecdsa": project_json("0.19.2", advisory("PYSEC-2026-1325", "CVE-2024-23342", fixed_in=("0.20",))),
        "tqdm": project_json("4.70.1"),
    }

    report = audit.decide(installed, output, projects, PROJECT)

    assert [(v.package, v.version, v.id, v.aliases, v.fixed_in) for v in report.vulnerabilities] == [
        ("ecdsa", "0.19.2", "PYSEC-2026-1325", ("CVE-2024-23342",), ("0.20",))
    ]
    assert audit.exit_code(report) == 1
    text = audit.format_report(report)
    assert "ecdsa 0.19.2: PYSEC-2026-1325 (aliases: CVE-2024-23342; fixed in: 0.20; from PyPI JSON)" in text
    assert "FAILED: known vulnerabilities" in text


def test_withdrawn_advisory_is_ignored():
    installed = {"tornado": "6.6.1"}
    withdrawn = advisory("GHSA-xxxx-yyyy-zzzz", "CVE-2099-0001", withdrawn="2026-01-02T03:04:05Z")
    projects = {"tornado": project_json("6.6.1", withdrawn)}

    report = audit.decide(installed, pip_audit_output(skipped("tornado", "6.6.1")), projects, PROJECT)

    assert report.by_fallback == ["tornado==6.6.1"]
    assert report.vulnerabilities == []
    assert audit.exit_code(report) == 0


def test_release_below_latest_is_not_checked_and_does_not_fail():
    installed = {"aiolimiter": "1.2.1", "tqdm": "4.70.1"}
    output = pip_audit_output(skipped("aiolimiter", "1.2.1"), skipped("tqdm", "4.70.1"))
    # The latest release's advisories say nothing about 1.2.1, vulnerable or not.
    projects = {
        "aiolimiter": project_json("1.3.0", advisory("PYSEC-2099-1")),
        "tqdm": project_json("4.70.1"),
    }

    report = audit.decide(installed, output, projects, PROJECT)

    assert report.not_checked == [("aiolimiter", "installed 1.2.1, latest 1.3.0")]
    assert report.vulnerabilities == []
    assert audit.exit_code(report) == 0
    assert "  aiolimiter: not checked (installed 1.2.1, latest 1.3.0)" in audit.format_report(report)


def test_vulnerability_reported_by_pip_audit_fails():
    output = pip_audit_output(
        {
            "name": "pillow",
            "version": "12.0.0",
            "vulns": [
                {
                    "id": "GHSA-aaaa-bbbb-cccc",
                    "fix_versions": ["12.1.1"],
                    "aliases": ["CVE-2099-0002"],
                    "description": "...",
                }
            ],
        },
        {"name": "tqdm", "version": "4.70.1", "vulns": []},
    )

    report = audit.decide({"pillow": "12.0.0", "tqdm": "4.70.1"}, output, {}, PROJECT)

    assert report.by_pip_audit == ["pillow==12.0.0", "tqdm==4.70.1"]
    assert report.by_fallback == []
    assert report.not_checked == []  # audited ones need no fallback
    assert [(v.package, v.id, v.aliases, v.fixed_in, v.source) for v in report.vulnerabilities] == [
        ("pillow", "GHSA-aaaa-bbbb-cccc", ("CVE-2099-0002",), ("12.1.1",), "pip-audit")
    ]
    assert audit.exit_code(report) == 1


def test_nothing_checked_fails():
    installed = {"aiohttp": "3.14.5", "tqdm": "4.70.1"}
    output = pip_audit_output(skipped("aiohttp", "3.14.5"), skipped("tqdm", "4.70.1"))
    unreachable = "[Errno -3] Temporary failure in name resolution (after 3 tries)"

    report = audit.decide(installed, output, dict.fromkeys(installed, unreachable), PROJECT)

    assert report.checked == 0
    assert report.vulnerabilities == []
    assert [name for name, _ in report.not_checked] == ["aiohttp", "tqdm"]
    assert audit.exit_code(report) == 1
    assert "FAILED: no package could be checked" in audit.format_report(report)


def test_nothing_checked_fails_also_when_pip_audit_itself_failed_and_nothing_is_installed():
    assert audit.exit_code(audit.decide({PROJECT: "0.1.0"}, None, {}, PROJECT)) == 1


def test_ignore_list_matches_an_id_or_an_alias_and_still_prints_it():
    installed = {"ecdsa": "0.19.2", "pycrypto": "2.6.1"}
    output = pip_audit_output(skipped("ecdsa", "0.19.2"), skipped("pycrypto", "2.6.1"))
    projects = {
        "ecdsa": project_json("0.19.2", advisory("PYSEC-2026-1325", "CVE-2024-23342")),
        "pycrypto": project_json("2.6.1", advisory("PYSEC-2017-94", "CVE-2013-7459")),
    }

    only_ecdsa = audit.decide(installed, output, projects, PROJECT, ignored={"CVE-2024-23342": "not used"})
    both = audit.decide(
        installed, output, projects, PROJECT, ignored={"CVE-2024-23342": "a", "PYSEC-2017-94": "b"}
    )

    assert [v.package for v in only_ecdsa.vulnerabilities] == ["pycrypto"]
    assert [(v.id, why) for v, why in only_ecdsa.ignored] == [("PYSEC-2026-1325", "not used")]
    assert audit.exit_code(only_ecdsa) == 1
    assert both.vulnerabilities == []
    assert len(both.ignored) == 2
    assert audit.exit_code(both) == 0
    assert "Ignored on purpose" in audit.format_report(both)


def test_the_shipped_ignore_list_is_empty():
    assert audit.IGNORED == {}


def test_the_project_itself_is_never_looked_up():
    installed = {PROJECT: "0.1.0", "tqdm": "4.70.1"}
    output = pip_audit_output(skipped("tqdm", "4.70.1"))

    assert audit.needs_fallback(installed, output, PROJECT) == {"tqdm": "4.70.1"}
    assert audit.needs_fallback(installed, None, PROJECT) == {"tqdm": "4.70.1"}


def test_aliased_advisories_count_once():
    # PyPI lists the PYSEC and the GHSA record of one vulnerability, each aliasing the other.
    entries = [
        advisory("PYSEC-2017-94", "CVE-2013-7459", "GHSA-cq27-v7xp-c356"),
        advisory("GHSA-cq27-v7xp-c356", "CVE-2013-7459", "PYSEC-2017-94", fixed_in=("3.0",)),
        advisory("PYSEC-2018-97", "CVE-2018-6594"),
    ]

    found = audit.pypi_vulnerabilities("pycrypto", "2.6.1", entries)

    assert [(v.id, v.aliases, v.fixed_in) for v in found] == [
        ("PYSEC-2017-94", ("CVE-2013-7459", "GHSA-cq27-v7xp-c356"), ("3.0",)),
        ("PYSEC-2018-97", ("CVE-2018-6594",), ()),
    ]


def test_versions_compare_as_versions():
    verdict = audit.fallback_verdict("certifi", "2026.10.19.post1", project_json("2026.10.19-post1"))
    assert verdict == []
    assert audit.fallback_verdict("boolean-py", "5.0", project_json("5.0.0")) == []


def test_project_json_without_advisories_field_is_not_a_clean_bill():
    verdict = audit.fallback_verdict("tqdm", "4.70.1", {"info": {"version": "4.70.1"}})
    assert isinstance(verdict, str)


def test_package_missing_from_pypi_is_not_checked():
    report = audit.decide({"private-thing": "1.0"}, None, {"private-thing": "HTTP 404"}, PROJECT)
    assert report.not_checked == [("private-thing", "PyPI project JSON unavailable: HTTP 404")]


def test_version_of_a_skipped_dependency_comes_from_the_skip_reason_when_not_installed_here():
    output = pip_audit_output(skipped("pyyaml", "6.0.4"))
    assert audit.needs_fallback({}, output, PROJECT) == {"pyyaml": "6.0.4"}


def test_fetch_retries_server_errors_but_not_a_missing_project(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def fake_urlopen(request, timeout):
        calls.append(request.full_url)
        if "missing" in request.full_url:
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)
        if len(calls) == 1:
            raise urllib.error.HTTPError(request.full_url, 503, "Unavailable", {}, None)
        return io.BytesIO(b'{"info": {"version": "1.0"}, "vulnerabilities": []}')

    monkeypatch.setattr(audit.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(audit.time, "sleep", lambda seconds: None)

    assert audit.fetch_project_json("tqdm", 5) == {"info": {"version": "1.0"}, "vulnerabilities": []}
    assert len(calls) == 2
    assert audit.fetch_project_json("missing", 5) == "HTTP 404"
    assert len(calls) == 3
