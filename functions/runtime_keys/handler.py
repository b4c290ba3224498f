"""Lambda entry for the runtime keys group (LiteLLM's key management and spend logs)."""

from aiplane.api.lambda_entry import make_lambda_handler
from functions.family_app import build_group_app

handler = make_lambda_handler(build_group_app("runtime", "keys"), "runtime")
