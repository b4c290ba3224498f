#!/bin/sh
# The handler of a streaming function: the Lambda Web Adapter's /opt/bootstrap execs it from the
# task root. Packages come only from the function code and the layers, which Lambda unpacks under
# /opt (-S: no site-packages; the packaged tests set AIPLANE_LAYER_ROOT to their unpacked layers).
PYTHONPATH="$LAMBDA_TASK_ROOT:${AIPLANE_LAYER_ROOT:-/opt}/python" exec python3 -S -m functions.streaming.server
