"""Lambda code assets: the zips `aiplane_infra.assets` builds (cached under build/lambda/), uploaded
as they are. Every synth uses the real build, so no template ever points at an empty layer, and
what deploys is what `tests/packaged/` ran.

- the function code: the whole `functions/` tree (one asset shared by every function, so it
  uploads once);
- the domain layer: `aiplane` and `aiplane_shared` under `python/`;
- the dependencies layer: the third-party packages of `requirements/lambda.lock`.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_

from aiplane_infra import assets

RUNTIME = lambda_.Runtime.PYTHON_3_12


def function_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(assets.build_functions()))


def domain_layer_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(assets.build_domain()))


def dependencies_layer_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(assets.build_dependencies()))
