"""What init leaves for first use is loaded by the warm-ups, which Lambda runs before a SnapStart snapshot."""

from __future__ import annotations

import json
import subprocess
import sys
import types

from aiplane import snapshots

LEFT_FOR_FIRST_USE = ("redis", "argon2", "aws_lambda_powertools.utilities.parameters", "jwt", "httpx", "numpy")


def test_a_warm_up_is_registered_with_the_runtime_hooks_where_lambda_provides_them(monkeypatch):
    registered = []
    hooks = types.ModuleType("snapshot_restore_py")
    hooks.register_before_snapshot = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", hooks)
    monkeypatch.setattr(snapshots, "WARMERS", [])

    def warm() -> None:
        pass

    assert snapshots.warm_before_snapshot(warm) is warm
    assert registered == [warm]
    assert snapshots.WARMERS == [warm]


def test_importing_leaves_them_out_and_the_warm_ups_load_them():
    # A fresh interpreter: this one has imported everything already.
    code = f"""
import json, sys
import aiplane.appproxy.events, aiplane.appproxy.tokens, aiplane.data.secrets, aiplane.identity.authenticate
import aiplane.chains.hooks, aiplane.files.search, aiplane.gateway.clients, aiplane.outbound
from aiplane.snapshots import WARMERS
lazy = {LEFT_FOR_FIRST_USE!r}
imported = [name for name in lazy if name in sys.modules]
for warm in WARMERS:
    warm()
print(json.dumps({{"at_import": imported, "warmed": [name for name in lazy if name in sys.modules]}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"at_import": [], "warmed": list(LEFT_FOR_FIRST_USE)}
