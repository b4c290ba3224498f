"""The agent's artifact, as GPU hosts install it: a zip holding `aiplane-agent.pyz` (a zipapp of
this package, run by any Python >= 3.11) and `requirements.txt` (its third-party packages, the
`agent` extra of pyproject.toml). Byte-for-byte the same for the same sources, so the CDK asset
(infra/cdk, GpuFleet) changes only when the agent does. `python -m aiplane_agent.artifact OUT.zip`.
"""

from __future__ import annotations

import io
import sys
import tomllib
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PYPROJECT = PACKAGE_DIR.parents[1] / "pyproject.toml"
ZIPAPP_NAME = "aiplane-agent.pyz"
REQUIREMENTS_NAME = "requirements.txt"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIPAPP_MAIN = b"from aiplane_agent.agent import main\n\nmain()\n"


def requirements(pyproject: Path = PYPROJECT) -> list[str]:
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["optional-dependencies"]["agent"])


def _entry(archive: zipfile.ZipFile, name: str, content: bytes) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, content)


def zipapp_bytes() -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buffer, "a") as archive:
        _entry(archive, "__main__.py", ZIPAPP_MAIN)
        for source in sorted(PACKAGE_DIR.rglob("*.py")):
            _entry(archive, f"aiplane_agent/{source.relative_to(PACKAGE_DIR).as_posix()}", source.read_bytes())
    return buffer.getvalue()


def build(target: Path) -> Path:
    """Write the artifact zip to `target` (rewritten only when its bytes change)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _entry(archive, ZIPAPP_NAME, zipapp_bytes())
        _entry(archive, REQUIREMENTS_NAME, "".join(f"{line}\n" for line in requirements()).encode())
    content = buffer.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != content:
        target.write_bytes(content)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
