"""This tier runs against the embedded stack (moto and the local wiring)."""

from tests.local_stack import admin_api_key, family_clients, local_stack, manager_token, worker_token
