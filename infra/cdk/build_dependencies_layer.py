"""Build the Lambda dependencies layer: the project's run-time dependencies for Python 3.12 on
x86_64 Linux, into build/lambda-dependencies/python (what `make deploy` uploads)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = REPO_ROOT / "build" / "lambda-dependencies" / "python"


def main() -> None:
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    shutil.rmtree(TARGET, ignore_errors=True)
    TARGET.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TARGET),
         "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.12",
         "--only-binary=:all:", *dependencies],
        check=True,
    )


if __name__ == "__main__":
    main()
