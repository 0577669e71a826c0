#!/usr/bin/env python3
"""Hand-written stand-ins for the machine tools the falco charm drives.

One script, installed under several names (``systemctl``, ``dkms``, ``modprobe``, ``dpkg``,
``apt-get``, ``apt-cache``), dispatching on the name it was called by. Each call is appended
to ``$FAKE_STATE_DIR/calls.jsonl``; the tools keep their state in ``$FAKE_STATE_DIR`` as JSON,
so a test can read what the machine would look like and set knobs (a failing start, a failing
DKMS build, a package apt cannot find).

It follows the real tools' contracts the charm depends on: exit codes of ``systemctl
is-active``/``is-failed``, "Unit not found" for a unit systemd has not loaded, the warning for
a unit file changed on disk without ``daemon-reload``, ``enable`` creating the wants symlink,
``dpkg -l`` output with its five header lines, DKMS building from ``/usr/src/<m>-<v>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

STATE_DIR = Path(os.environ.get("FAKE_STATE_DIR", "/nonexistent"))
ROOT = Path(os.environ.get("FAKE_ROOT", "/nonexistent"))
UNIT_DIR = ROOT / "etc/systemd/system"


def _load(name: str) -> dict[str, Any]:
    path = STATE_DIR / f"{name}.json"
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _save(name: str, data: dict[str, Any]) -> None:
    (STATE_DIR / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))


def _record(tool: str, argv: list[str]) -> None:
    with (STATE_DIR / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"tool": tool, "argv": argv}) + "\n")


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


# ------------------------------------------------------------------------------ systemctl
def systemctl(argv: list[str]) -> int:  # noqa: C901 - one branch per verb, like the real CLI
    args = [a for a in argv if not a.startswith("--")]
    verb, names = args[0], args[1:]
    state = _load("systemd")
    units: dict[str, dict[str, Any]] = state.setdefault("units", {})
    knobs: dict[str, Any] = state.setdefault("knobs", {})
    code = 0
    if verb == "daemon-reload":
        state["daemon_reloads"] = state.get("daemon_reloads", 0) + 1
        for name, unit in units.items():
            unit["loaded"] = _digest(UNIT_DIR / name)
        for path in UNIT_DIR.glob("*.service"):
            units.setdefault(path.name, {"active": False, "enabled": False, "failed": False})
            units[path.name]["loaded"] = _digest(path)
        _save("systemd", state)
        return 0
    for raw in names:
        name = raw if raw.endswith(".service") else f"{raw}.service"
        unit = units.setdefault(
            name, {"active": False, "enabled": False, "failed": False, "loaded": None}
        )
        if verb in ("start", "restart"):
            if unit.get("loaded") is None:
                print(f"Failed to start {name}: Unit {name} not found.", file=sys.stderr)
                code = 5
                continue
            if unit["loaded"] != _digest(UNIT_DIR / name):
                state.setdefault("stale_starts", []).append(name)
                print(f"Warning: The unit file of {name} changed on disk.", file=sys.stderr)
            if knobs.get("fail_start"):
                unit.update(active=False, failed=True)
                print(f"Job for {name} failed.", file=sys.stderr)
                code = 1
            else:
                unit.update(active=True, failed=False)
        elif verb == "stop":
            unit.update(active=False)
        elif verb == "enable":
            if not (UNIT_DIR / name).is_file():
                print(f"Failed to enable unit: Unit file {name} does not exist.", file=sys.stderr)
                code = 1
                continue
            wants = UNIT_DIR / "multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / name
            if not link.is_symlink():
                link.symlink_to(UNIT_DIR / name)
            unit["enabled"] = True
        elif verb == "disable":
            (UNIT_DIR / "multi-user.target.wants" / name).unlink(missing_ok=True)
            unit["enabled"] = False
        elif verb == "reset-failed":
            unit["failed"] = False
        elif verb == "reload":
            code = 0 if unit["active"] else 1
        elif verb == "is-active":
            print("active" if unit["active"] else ("failed" if unit["failed"] else "inactive"))
            code = 0 if unit["active"] else 3
        elif verb == "is-failed":
            code = 0 if unit["failed"] else 1
        elif verb == "is-enabled":
            code = 0 if unit["enabled"] else 1
        else:
            print(f"fake systemctl: unsupported verb {verb}", file=sys.stderr)
            return 2
    _save("systemd", state)
    return code


# ------------------------------------------------------------------------------ dkms, modprobe
def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1] if flag in argv else ""


def dkms(argv: list[str]) -> int:
    state = _load("dkms")
    installed: list[str] = state.setdefault("installed", [])
    verb = argv[0]
    module, version, kernel = _option(argv, "-m"), _option(argv, "-v"), _option(argv, "-k")
    key = f"{module}/{version}/{kernel}"
    if verb == "status":
        for entry in installed:
            m, v, k = entry.split("/")
            if m == module and v == version and (not kernel or k == kernel):
                print(f"{m}/{v}, {k}, x86_64: installed")
        return 0
    if verb == "install":
        if not (ROOT / "usr/src" / f"{module}-{version}" / "dkms.conf").is_file():
            print(f"Error! Could not find module source directory for {module}-{version}")
            return 3
        if state.get("knobs", {}).get("fail_build"):
            print("Error! Bad return status for module build on kernel", file=sys.stderr)
            return 10
        if key not in installed:
            installed.append(key)
    elif verb == "remove":
        state["installed"] = [e for e in installed if not e.startswith(f"{module}/{version}/")]
    _save("dkms", state)
    return 0


# ------------------------------------------------------------------------------ apt
def _packages() -> dict[str, Any]:
    state = _load("apt")
    state.setdefault("installed", [])
    state.setdefault("missing", [])
    return state


def dpkg(argv: list[str]) -> int:
    if argv == ["--print-architecture"]:
        print("amd64")
        return 0
    state = _packages()
    name = argv[-1]
    if name not in state["installed"]:
        print(f"dpkg-query: no packages found matching {name}", file=sys.stderr)
        return 1
    print("Desired=Unknown/Install/Remove/Purge/Hold")
    print("| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend")
    print("|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)")
    print("||/ Name           Version      Architecture Description")
    print("+++-==============-============-============-=================================")
    print(f"ii  {name}  1.0-1  amd64  fake package")
    return 0


def apt_cache(argv: list[str]) -> int:
    state = _packages()
    name = argv[-1]
    if name in state["missing"]:
        print(f"E: No packages found for {name}", file=sys.stderr)
        return 100
    print(f"Package: {name}\nArchitecture: amd64\nVersion: 1.0-1\n")
    return 0


def apt_get(argv: list[str]) -> int:
    state = _packages()
    if "install" in argv:
        for spec in argv[argv.index("install") + 1 :]:
            name = spec.split("=")[0]
            if name in state["missing"]:
                print(f"E: Unable to locate package {name}", file=sys.stderr)
                return 100
            if name not in state["installed"]:
                state["installed"].append(name)
    _save("apt", state)
    return 0


TOOLS = {
    "systemctl": systemctl,
    "dkms": dkms,
    "modprobe": lambda argv: 0,
    "dpkg": dpkg,
    "apt-get": apt_get,
    "apt-cache": apt_cache,
}


def main() -> int:
    tool = Path(sys.argv[0]).name
    _record(tool, sys.argv[1:])
    return TOOLS[tool](sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
