"""Known vulnerabilities in the packages installed in this environment (``make audit``, ``make lint``, CI).

    .venv/bin/python scripts/audit.py [--timeout SECONDS]

Audits the environment of the Python that runs it (use the venv's, as the Makefile does), without the
project itself:

1. ``pip-audit`` (PyPI service) audits every installed distribution against PyPI's advisories for
   exactly its installed version (``/pypi/<name>/<version>/json``). Each one it audited is checked,
   with its result.
2. Each one it skipped (that per-version API answers 404 on these machines, and OSV is unreachable)
   falls back to the project-level JSON (``/pypi/<name>/json``), whose ``vulnerabilities`` are PyPI's
   advisories for the latest release only: when the installed version is that release, the list is the
   answer for it (withdrawn advisories aside) and the package is checked; otherwise it cannot be checked
   here and is listed as "not checked (installed X, latest Y)".

Exit status 1 if any vulnerability not in ``IGNORED`` is found, or if nothing at all could be checked
(PyPI unreachable, say): a run that checked nothing must not pass. Packages not checked are listed but do
not fail the run, also under CI, since our version ranges can keep a package below its newest release.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
PYPI_PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
# pip-audit's HTTP cache, kept between runs (PyPI's own cache headers decide what is reused).
CACHE_DIR = Path(tempfile.gettempdir()) / "beacon-pip-audit-cache"
PIP_AUDIT_DEADLINE = 300  # seconds for the whole pip-audit run
FETCH_WORKERS = 8
FETCH_ATTEMPTS = 3

# Advisories accepted on purpose: vulnerability id (or any of its aliases) -> why it does not affect
# Beacon, who reviewed it and until when. An ignored advisory is still printed on every run.
IGNORED: dict[str, str] = {}


@dataclass(frozen=True)
class Vulnerability:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    source: str  # "pip-audit" or "PyPI JSON"


@dataclass
class Report:
    by_pip_audit: list[str] = field(default_factory=list)  # "name==version"
    by_fallback: list[str] = field(default_factory=list)
    not_checked: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    vulnerabilities: list[Vulnerability] = field(default_factory=list)
    ignored: list[tuple[Vulnerability, str]] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return len(self.by_pip_audit) + len(self.by_fallback)


def canonical(name: str) -> str:
    """PEP 503 normalised name, as pip-audit and PyPI use."""
    return re.sub(r"[-_.]+", "-", name).lower()


def same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def project_name(pyproject: Path = ROOT / "pyproject.toml") -> str:
    with pyproject.open("rb") as handle:
        return canonical(tomllib.load(handle)["project"]["name"])


def installed_distributions() -> dict[str, str]:
    """canonical name -> version of every distribution this interpreter sees (the first one wins)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonical(name), dist.version)
    return found


def _version_in_skip_reason(reason: str) -> str | None:
    # pip-audit's JSON gives a skipped dependency no version; its reason ends with "name (version)".
    match = re.search(r"\(([^()\s]+)\)\s*$", reason)
    return match.group(1) if match else None


def pip_audit_vulnerabilities(
    name: str, version: str, vulns: Iterable[Mapping[str, Any]]
) -> list[Vulnerability]:
    return [
        Vulnerability(
            package=name,
            version=version,
            id=str(v["id"]),
            aliases=tuple(v.get("aliases") or ()),
            fixed_in=tuple(str(f) for f in v.get("fix_versions") or ()),
            source="pip-audit",
        )
        for v in vulns
    ]


def pypi_vulnerabilities(
    name: str, version: str, entries: Iterable[Mapping[str, Any]]
) -> list[Vulnerability]:
    """PyPI's advisories but withdrawn ones; entries sharing an id or alias are merged, as pip-audit does."""
    found: list[Vulnerability] = []
    for entry in entries:
        if entry.get("withdrawn"):
            continue
        vuln = Vulnerability(
            package=name,
            version=version,
            id=str(entry["id"]),
            aliases=tuple(str(a) for a in entry.get("aliases") or ()),
            fixed_in=tuple(str(f) for f in entry.get("fixed_in") or ()),
            source="PyPI JSON",
        )
        ids = {vuln.id, *vuln.aliases}
        same = next((i for i, v in enumerate(found) if ids & {v.id, *v.aliases}), None)
        if same is None:
            found.append(vuln)
        else:
            kept = found[same]
            aliases = sorted({*kept.aliases, *ids} - {kept.id})
            fixed = sorted({*kept.fixed_in, *vuln.fixed_in}, key=_version_key)
            found[same] = replace(kept, aliases=tuple(aliases), fixed_in=tuple(fixed))
    return found


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def fallback_verdict(
    name: str, installed: str, project: Mapping[str, Any] | str
) -> list[Vulnerability] | str:
    """The advisories for ``installed`` from the project-level JSON, or why it cannot tell (a string).

    ``project`` is the decoded JSON, or the error met fetching it."""
    if isinstance(project, str):
        return f"PyPI project JSON unavailable: {project}"
    latest = (project.get("info") or {}).get("version")
    vulnerabilities = project.get("vulnerabilities")
    if not isinstance(latest, str) or not isinstance(vulnerabilities, list):
        return "PyPI project JSON has no info.version or vulnerabilities list"
    if not same_version(installed, latest):
        return f"installed {installed}, latest {latest}"
    return pypi_vulnerabilities(name, installed, vulnerabilities)


def needs_fallback(
    installed: Mapping[str, str], pip_audit: Mapping[str, Any] | None, project: str
) -> dict[str, str]:
    """Packages pip-audit did not audit (skipped, absent, or pip-audit failed): name -> installed version."""
    audited = set()
    versions = {name: version for name, version in installed.items() if name != project}
    for dep in (pip_audit or {}).get("dependencies", []):
        name = canonical(dep["name"])
        if name == project:
            continue
        if "skip_reason" in dep:
            version = versions.get(name) or _version_in_skip_reason(dep["skip_reason"])
            if version:
                versions[name] = version
        else:
            audited.add(name)
    return {name: version for name, version in sorted(versions.items()) if name not in audited}


def decide(
    installed: Mapping[str, str],
    pip_audit: Mapping[str, Any] | None,
    projects: Mapping[str, Mapping[str, Any] | str],
    project: str,
    ignored: Mapping[str, str] = IGNORED,
) -> Report:
    """Every installed package but ``project``: checked by pip-audit, by the PyPI fallback, or not checked.

    ``pip_audit`` is pip-audit's JSON output (None when it failed); ``projects`` maps each package that
    needs the fallback to its project-level JSON or the error met fetching it."""
    report = Report()
    found: list[Vulnerability] = []
    for dep in (pip_audit or {}).get("dependencies", []):
        name = canonical(dep["name"])
        if name == project or "skip_reason" in dep:
            continue
        report.by_pip_audit.append(f"{name}=={dep['version']}")
        found += pip_audit_vulnerabilities(name, dep["version"], dep.get("vulns") or ())
    for name, version in needs_fallback(installed, pip_audit, project).items():
        verdict = fallback_verdict(name, version, projects.get(name, "not fetched"))
        if isinstance(verdict, str):
            report.not_checked.append((name, verdict))
        else:
            report.by_fallback.append(f"{name}=={version}")
            found += verdict
    for vuln in found:
        reason = next((ignored[i] for i in (vuln.id, *vuln.aliases) if i in ignored), None)
        if reason is None:
            report.vulnerabilities.append(vuln)
        else:
            report.ignored.append((vuln, reason))
    return report


def exit_code(report: Report) -> int:
    return 1 if report.vulnerabilities or report.checked == 0 else 0


def _wrapped(items: list[str]) -> str:
    text = ", ".join(items)
    return textwrap.fill(text, 110, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)


def format_report(report: Report) -> str:
    lines = [f"Checked by pip-audit (advisories for the installed version): {len(report.by_pip_audit)}"]
    if report.by_pip_audit:
        lines.append(_wrapped(report.by_pip_audit))
    lines.append(
        f"Checked by PyPI's project JSON (installed version is the latest release): {len(report.by_fallback)}"
    )
    if report.by_fallback:
        lines.append(_wrapped(report.by_fallback))
    lines.append(
        f"Not checked: {len(report.not_checked)} (listed, not a failure; without pip-audit's per-version"
        " lookup only a latest release can be checked)"
    )
    lines += [f"  {name}: not checked ({why})" for name, why in report.not_checked]

    def describe(v: Vulnerability) -> str:
        aliases = ", ".join(v.aliases) or "none"
        fixed = ", ".join(v.fixed_in) or "no fixed release"
        return f"{v.package} {v.version}: {v.id} (aliases: {aliases}; fixed in: {fixed}; from {v.source})"

    lines.append(f"Vulnerabilities: {len(report.vulnerabilities)}")
    lines += [f"  {describe(v)}" for v in report.vulnerabilities]
    if report.ignored:
        lines.append(f"Ignored on purpose (IGNORED in scripts/audit.py): {len(report.ignored)}")
        lines += [f"  {describe(v)} -- {why}" for v, why in report.ignored]
    if report.vulnerabilities:
        lines.append("FAILED: known vulnerabilities in installed packages")
    elif report.checked == 0:
        lines.append("FAILED: no package could be checked, so this run proves nothing")
    else:
        total = report.checked + len(report.not_checked)
        lines.append(f"OK: no known vulnerabilities in the {report.checked} of {total} packages checked")
    return "\n".join(lines)


def run_pip_audit(timeout: int) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON for this interpreter's environment, or None, and a line saying what happened."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--local",  # this environment's own packages (pip list --local)
        "--skip-editable",  # the project: its name on PyPI belongs to someone else
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(timeout),
        "--cache-dir",
        str(CACHE_DIR),
    ]
    # pip-audit lists packages with `python -m pip` of this interpreter (the venv's), whatever VIRTUAL_ENV is.
    env = {**os.environ, "PIPAPI_PYTHON_LOCATION": sys.executable}
    try:
        done = subprocess.run(  # noqa: S603 -- fixed arguments, this interpreter
            command, capture_output=True, text=True, timeout=PIP_AUDIT_DEADLINE, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"pip-audit did not finish in {PIP_AUDIT_DEADLINE} s; every package falls back"
    try:
        output = json.loads(done.stdout)
        if not isinstance(output, dict) or not isinstance(output.get("dependencies"), list):
            raise ValueError("no dependencies list")
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return None, f"pip-audit failed (exit {done.returncode}: {last}); every package falls back"
    skipped = Counter(d["skip_reason"].split(":")[0] for d in output["dependencies"] if "skip_reason" in d)
    audited = sum(1 for d in output["dependencies"] if "skip_reason" not in d)
    reasons = "; ".join(f"{count} x {reason}" for reason, count in skipped.items()) or "none"
    return output, f"pip-audit audited {audited} packages, skipped {sum(skipped.values())} ({reasons})"


def fetch_project_json(name: str, timeout: float) -> dict[str, Any] | str:
    """PyPI's project-level JSON for ``name``, or the error (a few tries on network errors and 5xx)."""
    url = PYPI_PROJECT_JSON.format(name=name)
    request = urllib.request.Request(url, headers={"User-Agent": "beacon-audit (urllib)"})  # noqa: S310
    error = ""
    for attempt in range(FETCH_ATTEMPTS):
        if attempt:
            time.sleep(attempt)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 -- https only
                data = json.load(response)
            return data if isinstance(data, dict) else "not a JSON object"
        except urllib.error.HTTPError as e:
            error = f"HTTP {e.code}"
            if e.code < 500 and e.code != 429:
                return error
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets, truncation
            error = str(getattr(e, "reason", e))
        except ValueError as e:
            return f"invalid JSON ({e})"
    return f"{error} (after {FETCH_ATTEMPTS} tries)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=15, help="seconds per HTTP request (default 15)")
    args = parser.parse_args(argv)

    if importlib.util.find_spec("pip_audit") is None:
        print(f"pip-audit is not installed for {sys.executable}: run `make install`", file=sys.stderr)
        return 1
    project = project_name()
    installed = installed_distributions()
    header = f"Dependency audit of {sys.prefix}: {len(installed) - (project in installed)} packages"
    print(f"{header} ({project} itself excluded)", flush=True)
    pip_audit, what_happened = run_pip_audit(args.timeout)
    print(what_happened, flush=True)
    missing = needs_fallback(installed, pip_audit, project)
    with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
        fetched = pool.map(lambda name: fetch_project_json(name, args.timeout), missing)
        projects = dict(zip(missing, fetched, strict=True))
    report = decide(installed, pip_audit, projects, project)
    print(format_report(report))
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
