"""Lambda code assets, bundled locally (no docker at synth time).

- the function code: the whole `functions/` tree (thin routers and handlers; one asset shared by
  every function, so it uploads once);
- the domain layer: `aiplane` and `aiplane_shared` under `python/`;
- the dependencies layer: third-party packages, built by `build_dependencies_layer.py` before
  a deploy (`make deploy` does it).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS_DIR = REPO_ROOT / "functions"
DOMAIN_PACKAGES = {
    "aiplane": REPO_ROOT / "layers" / "python" / "aiplane",
    "aiplane_shared": REPO_ROOT / "shared" / "aiplane_shared",
}
DEPENDENCIES_DIR = REPO_ROOT / "build" / "lambda-dependencies"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
RUNTIME = lambda_.Runtime.PYTHON_3_12


@jsii.implements(cdk.ILocalBundling)
class CopyTrees:
    """Local bundling that copies source trees into the asset (`{destination: source}`)."""

    def __init__(self, trees: dict[str, Path]) -> None:
        self.trees = trees

    def try_bundle(self, output_dir: str, *args: object, **options: object) -> bool:
        for destination, source in self.trees.items():
            shutil.copytree(source, Path(output_dir) / destination, ignore=IGNORED, dirs_exist_ok=True)
        return True


def _tree_hash(*roots: Path) -> str:
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")) + sorted(root.rglob("*.tsv")):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _bundled_asset(trees: dict[str, Path]) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(next(iter(trees.values()))),
        asset_hash=_tree_hash(*trees.values()),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(image=cdk.DockerImage.from_registry("local-bundling-only"), local=CopyTrees(trees)),
    )


def function_code() -> lambda_.Code:
    return _bundled_asset({"functions": FUNCTIONS_DIR})


def domain_layer_code() -> lambda_.Code:
    return _bundled_asset({f"python/{name}": path for name, path in DOMAIN_PACKAGES.items()})


def dependencies_layer_code(require_built: bool) -> lambda_.Code:
    """The third-party packages layer. For a synth without a build (tests, `make synth`) an empty
    layer keeps the template complete; a deploy requires the real build."""
    if not (DEPENDENCIES_DIR / "python").is_dir():
        if require_built:
            raise SystemExit(f"{DEPENDENCIES_DIR} is missing: run infra/cdk/build_dependencies_layer.py")
        (DEPENDENCIES_DIR / "python").mkdir(parents=True)
    return lambda_.Code.from_asset(str(DEPENDENCIES_DIR))
