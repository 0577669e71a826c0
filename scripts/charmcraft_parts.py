"""Check that every part of a charmcraft.yaml is valid on every platform it builds for.

``charmcraft expand-extensions`` validates the project, but a part's grammar (``to amd64:``
lists) is only resolved when a platform is built: a key left without a value for one
platform (a ``source-checksum`` given for amd64 only) fails there, at pack time. This
resolves the grammar for each platform the way charmcraft does and validates each part with
craft-parts. Run it with charmcraft's own Python (``make charmcraft-check`` does):

    uv tool run --from charmcraft==<version> python scripts/charmcraft_parts.py charmcraft.yaml
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import craft_cli
import yaml
from craft_application import grammar
from craft_parts.parts import PartSpec


def problems(project: dict) -> list[str]:
    """Return what fails, as "<platform>: <part>: <error>" lines."""
    found = []
    for platform in project.get("platforms") or {}:
        parts = grammar.process_parts(
            parts_yaml_data=copy.deepcopy(project.get("parts") or {}),
            arch=platform,
            target_arch=platform,
            platform_ids={platform},
        )
        for name, data in parts.items():
            try:
                PartSpec.unmarshal(dict(data))
            except Exception as exc:  # any refusal is reported the same way
                found.append(f"{platform}: {name}: {' '.join(str(exc).split())}")
    return found


def main(argv: list[str]) -> int:
    """Check the charmcraft.yaml named in ``argv``; print what fails."""
    craft_cli.emit.init(craft_cli.EmitterMode.QUIET, "charmcraft_parts", "check parts")
    try:
        found = problems(yaml.safe_load(Path(argv[1]).read_text()))
    finally:
        craft_cli.emit.ended_ok()
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
