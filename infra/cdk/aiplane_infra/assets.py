"""Build the Lambda assets: the zip files a deploy uploads and `tests/packaged/` runs.

- `dependencies`: the layer of third-party packages, `requirements/lambda.lock` installed for
  CPython 3.12 on manylinux x86_64 into `python/`. boto3 is in it, pinned: the managed runtime's
  copy changes without notice, and the packaged tests must run exactly what deploys;
- `domain`: the layer with `python/aiplane` and `python/aiplane_shared`;
- `functions`: the function code, the whole `functions/` tree (one asset for every function).

Each tree is compiled by Python 3.12 (`__pycache__/*.cpython-312.pyc`) with unchecked-hash
invalidation: Lambda unpacks zips with 2-second timestamps, so timestamp-checked bytecode would
be judged stale and recompiled on every cold start. Sources stay in (tracebacks show lines).

Each zip is cached under `build/lambda/` by a key over its inputs, so a rebuild only happens when
the lock or the sources change. `python infra/cdk/aiplane_infra/assets.py` builds all three.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_DIR = REPO_ROOT / "build" / "lambda"
LAMBDA_LOCK = REPO_ROOT / "requirements" / "lambda.lock"
FUNCTIONS_DIR = REPO_ROOT / "functions"
DOMAIN_PACKAGES = {
    "aiplane": REPO_ROOT / "layers" / "python" / "aiplane",
    "aiplane_shared": REPO_ROOT / "shared" / "aiplane_shared",
}
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34); the lock is resolved for manylinux_2_28,
# and pip takes the glibc versions a wheel may ask for only when each is named.
PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1))
BUILD_FORMAT = "5"  # bump when the layout of a built asset changes, so cached zips are rebuilt
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so an unchanged tree gives the same zip (and asset hash)


# Parts of the locked packages that nothing on Lambda runs, left out of the dependencies layer.
# The two modules are imported only to be probed, and their absence is handled where they are.
UNUSED_ON_LAMBDA = (
    "bin",  # console scripts
    # Pydantic's v1 API: FastAPI imports it (about 20 ms of a cold start) only to reject v1 models.
    "pydantic/v1",
    # httpx's command-line client: importing httpx tries it, and so imports click (about 8 ms).
    "httpx/_main.py",
)


class MissingPython312(RuntimeError):
    pass


def find_python312() -> str:
    """The CPython 3.12 that compiles the bytecode (and runs the packaged tests)."""
    candidates = [os.environ.get("AIPLANE_PYTHON312"), shutil.which("python3.12")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    for candidate in filter(None, candidates):
        # The interpreter itself, not a shim: the packaged tests run it with a bare PATH.
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12), sys.executable)"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.startswith("True "):
            return probe.stdout.split(" ", 1)[1].strip()
    raise MissingPython312(
        "Python 3.12 is missing: the Lambda assets are compiled and tested with the Lambda runtime's "
        "Python. Install it (e.g. `pyenv install 3.12`) or set AIPLANE_PYTHON312 to its interpreter."
    )


@dataclass(frozen=True)
class BuiltAssets:
    functions: Path
    domain: Path
    dependencies: Path


def build_all() -> BuiltAssets:
    return BuiltAssets(functions=build_functions(), domain=build_domain(), dependencies=build_dependencies())


def build_functions() -> Path:
    return _cached_zip(
        "functions", _sources_key(FUNCTIONS_DIR), lambda tree: _copy_sources(FUNCTIONS_DIR, tree / "functions")
    )


def build_domain() -> Path:
    def fill(tree: Path) -> None:
        for name, source in DOMAIN_PACKAGES.items():
            _copy_sources(source, tree / "python" / name)

    return _cached_zip("domain", _sources_key(*DOMAIN_PACKAGES.values()), fill)


def build_dependencies() -> Path:
    def fill(tree: Path) -> None:
        target = tree / "python"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-compile",
                "--target",
                str(target),
                *(f"--platform={platform}" for platform in PLATFORMS),
                "--implementation",
                "cp",
                "--python-version",
                PYTHON_VERSION,
                "--only-binary=:all:",
                "--requirement",
                str(LAMBDA_LOCK),
            ],
            check=True,
        )
        for unused in UNUSED_ON_LAMBDA:
            path = target / unused
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    return _cached_zip("dependencies", _digest([LAMBDA_LOCK.read_bytes()]), fill)


def unpack(zips: Sequence[Path]) -> Path:
    """The zips unpacked in order into one tree, as Lambda unpacks the function code into
    /var/task and the layers, merged, into /opt (the packaged tests and the cold-start bench run it)."""
    tree = BUILD_DIR / ("unpacked-" + _digest([path.name.encode() for path in zips])[:16])
    if not tree.is_dir():
        staging = tree.with_name(tree.name + ".unpacking")
        shutil.rmtree(staging, ignore_errors=True)
        for zip_path in zips:
            with zipfile.ZipFile(zip_path) as archive:
                for member in archive.infolist():
                    extracted = Path(archive.extract(member, staging))
                    if not member.is_dir():
                        extracted.chmod((member.external_attr >> 16) & 0o777)
        staging.rename(tree)
    return tree


def _cached_zip(name: str, inputs_key: str, fill) -> Path:
    key = _digest([BUILD_FORMAT.encode(), inputs_key.encode()])[:16]
    target = BUILD_DIR / f"{name}-{key}.zip"
    if target.is_file():
        return target
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    for stale in [
        *BUILD_DIR.glob(f"{name}-*"),
        *BUILD_DIR.glob("unpacked-*"),
    ]:  # earlier builds, and trees unpacked from them
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    tree = BUILD_DIR / f"{name}-{key}.building"
    fill(tree)
    subprocess.run(
        [find_python312(), "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(tree)],
        check=True,
    )
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                entry = zipfile.ZipInfo(str(path.relative_to(tree)), ZIP_DATE)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
                archive.writestr(entry, path.read_bytes())
    shutil.rmtree(tree)
    partial.rename(target)
    return target


def _copy_sources(source: Path, destination: Path) -> None:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _sources_key(*roots: Path) -> str:
    parts: list[bytes] = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            parts += [
                str(path.relative_to(REPO_ROOT)).encode(),
                path.read_bytes(),
                str(os.access(path, os.X_OK)).encode(),
            ]
    return _digest(parts)


def _digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


if __name__ == "__main__":
    for built in vars(build_all()).values():
        print(built)
