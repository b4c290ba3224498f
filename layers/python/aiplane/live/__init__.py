"""Live updates over WebSocket (mlworker and gpufarm `/ws`).

A status change is published on the domain event bus (`updates.publish`, source `aiplane.live`);
a rule forwards it to the live-updates queue, whose consumer (`functions/websocket_sender`) posts
it to every open connection of the change's owner through API Gateway's management API
(PostToConnection), deleting connections that are gone. The family WebSocket APIs' `$connect`
authenticates as HTTP does and records the connection (`connections`); `$default` answers the
family's protocol (`protocol`). Locally the harness plays API Gateway (`aiplane_local.websocket_gateway`).
"""
