"""aiplane's data-plane agent (`aiplane-gpu-agent`): one process per GPU host doing the work the
control plane records. See `agent.py` for the loop and `components.py` for what plugs into it.

It depends on the standard library and httpx only (it runs on GPU hosts, not in the Lambda layer).
"""
