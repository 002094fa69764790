"""`scripts/audit`: known vulnerabilities in the pinned Python packages (pip-audit), and secrets committed to
the repository (detect-secrets).

    scripts/audit                 # both; exit 1 on a finding, 3 when pip-audit could not reach its advisories
    scripts/audit --offline-ok    # the same, but an unreachable advisory service is a warning (exit 0)
    scripts/audit --secrets-only | --deps-only

Dependencies: every `requirements/*.txt` (all pinned with ==), audited as written (`--no-deps`: each file
already pins what it installs) against PyPI's advisory database, then OSV's if PyPI's cannot be reached.
A package the service does not know is reported as *not audited*; when no package at all could be audited
the service was unreachable, and that is said plainly, never reported as "no known vulnerabilities".

Secrets: detect-secrets over every file git knows or would add (tracked, or untracked and not ignored). A
finding is new unless `.secrets.baseline` lists the same secret (by hash) in the same file; the baseline
holds the reviewed false positives (Azurite's published development key, the simulated pool's stand-in
keys, test fixtures). Only file, line and kind are printed, never the secret. After reviewing a new false
positive: `scripts/audit --update-baseline`.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BASELINE = ROOT / ".secrets.baseline"
EXCLUDE = ("node_modules/", "package-lock.json", "wmill-lock.yaml", ".secrets.baseline")
UNREACHABLE = 3


def _requirements() -> list[Path]:
    return sorted((ROOT / "requirements").glob("*.txt"))


def audit_dependencies(offline_ok: bool) -> int:
    worst = 0
    for req in _requirements():
        report, service, errors = None, None, []
        for service in ("pypi", "osv"):
            run = subprocess.run(
                [str(BIN / "pip-audit"), "-r", str(req), "--no-deps", "--disable-pip", "--progress-spinner", "off",
                 "-s", service, "-f", "json", "--timeout", "20"],
                capture_output=True, text=True, cwd=ROOT, check=False)
            try:
                report = json.loads(run.stdout)
            except json.JSONDecodeError:
                last = (run.stderr.strip().splitlines() or ["no output"])[-1]
                errors.append(f"{service}: {last.split('Caused by')[-1].strip(' ()')[:160]}")
                continue
            if any("skip_reason" not in d for d in report.get("dependencies", [])):
                break  # this service answered for at least one package
            skipped = report.get("dependencies", [])
            errors.append(f"{service}: {skipped[0]['skip_reason'] if skipped else 'no packages'}"[:200])
        deps = (report or {}).get("dependencies", [])
        audited = [d for d in deps if "skip_reason" not in d]
        skipped = [d for d in deps if "skip_reason" in d]
        vulns = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
        name = req.relative_to(ROOT)
        if not audited:
            print(f"pip-audit: {name}: NOT AUDITED: no vulnerability service answered for its packages "
                  f"({'; '.join(errors)})")
            worst = max(worst, 0 if offline_ok else UNREACHABLE)
            continue
        for pkg, version, v in vulns:
            fixes = ", ".join(v.get("fix_versions") or []) or "none yet"
            print(f"pip-audit: {name}: {pkg} {version}: {v.get('id')} {' '.join(v.get('aliases') or [])} "
                  f"(fixed in: {fixes})")
        print(f"pip-audit: {name}: {len(audited)} packages audited against {service}, {len(vulns)} known "
              f"vulnerabilities" + (f"; {len(skipped)} not audited: {', '.join(d['name'] for d in skipped)}"
                                    if skipped else ""))
        worst = max(worst, 1 if vulns else 0)
    return worst


def _files(root: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            capture_output=True, text=True, cwd=root, check=True).stdout.split("\0")
    return [f for f in listed if f and not f.startswith(EXCLUDE) and (root / f).is_file()]


def _scan(files: list[str], root: Path) -> dict:
    run = subprocess.run([str(BIN / "detect-secrets"), "scan", *files], capture_output=True, text=True, cwd=root,
                         check=False)
    if run.returncode != 0:
        raise SystemExit(f"detect-secrets failed: {run.stderr.strip()[-500:]}")
    return json.loads(run.stdout)


def audit_secrets(update: bool, root: Path = ROOT) -> int:
    files = _files(root)
    scan = _scan(files, root)
    baseline = root / BASELINE.name
    if update:
        baseline.write_text(json.dumps(scan, indent=2) + "\n")
        print(f"secrets: wrote {baseline.name}: {sum(map(len, scan['results'].values()))} reviewed findings")
        return 0
    known = set()
    if baseline.is_file():
        for file, items in json.loads(baseline.read_text()).get("results", {}).items():
            known |= {(file, item["hashed_secret"]) for item in items}
    new = [(file, item) for file, items in scan["results"].items() for item in items
           if (file, item["hashed_secret"]) not in known]
    for file, item in new:
        print(f"secrets: {file}:{item['line_number']}: {item['type']} (not in {BASELINE.name})")
    print(f"secrets: {len(files)} files scanned, {len(new)} new possible secrets")
    return 1 if new else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--offline-ok", action="store_true", help="an unreachable advisory service only warns")
    parser.add_argument("--deps-only", action="store_true")
    parser.add_argument("--secrets-only", action="store_true")
    parser.add_argument("--update-baseline", action="store_true", help="accept the current findings as reviewed")
    args = parser.parse_args(argv)
    codes = []
    if not args.deps_only:
        codes.append(audit_secrets(args.update_baseline))
    if not args.secrets_only and not args.update_baseline:
        codes.append(audit_dependencies(args.offline_ok))
    return 1 if 1 in codes else max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
