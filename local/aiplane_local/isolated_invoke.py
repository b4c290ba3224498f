"""Import and invoke Lambda handlers as the Python runtime does, over the unpacked assets.

Run by CPython 3.12 with `-I -S` (no site-packages, no PYTHONPATH, no user site): `sys.path` is the
standard library plus exactly the task root and the layers' `python/`, as on Lambda. It reads a
request (JSON on stdin) and writes one result per job (JSON on stdout).

Each job runs in a process forked from this one after the common third-party packages are
imported, with the function's own environment: a cold import of the function's code, then one
invocation with its sample event. Standard library only (it runs before anything is on sys.path).
"""

import gc
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


class LambdaContext:
    def __init__(self, job):
        self.function_name = job["function_name"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = job["memory_mb"]
        self.invoked_function_arn = f"arn:aws:lambda:{job['region']}:123456789012:function:{self.function_name}"
        self.aws_request_id = f"packaged-{job['name']}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "packaged"
        self._deadline = time.monotonic() + job["timeout_s"]

    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)


def run_job(job, result_path):
    if "task_root" in job:  # a job over other code (the cold-start bench's floor)
        sys.path[0] = job["task_root"]
    os.environ.clear()
    os.environ.update(job["environment"])
    result = {"name": job["name"]}
    # Wall time, and this process's CPU time: on a loaded machine the CPU time still says what
    # the code costs (waiting on moto is not in it).
    started, started_cpu = time.perf_counter(), time.process_time()
    imported = None
    try:
        module_name, attribute = job["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attribute)
        imported, imported_cpu = time.perf_counter(), time.process_time()
        result["import_ms"] = (imported - started) * 1000
        result["import_cpu_ms"] = (imported_cpu - started_cpu) * 1000
        result["collector_enabled_after_init"] = gc.isenabled()  # aiplane.cold_start resumed it
        result["response"] = handler(job["event"], LambdaContext(job))
    except BaseException as error:  # the result names it; the test decides
        result["error"] = f"{type(error).__name__}: {error}"
        result["traceback"] = traceback.format_exc()
    if imported is not None:  # an answer or a raise (an authorizer denies by raising): the first response's time
        result["invoke_ms"] = (time.perf_counter() - imported) * 1000
        result["invoke_cpu_ms"] = (time.process_time() - imported_cpu) * 1000
    Path(result_path).write_text(json.dumps(result, default=str))


def main():
    request = json.load(sys.stdin)
    sys.path[:0] = [request["task_root"], request["layer_python"]]
    os.environ.update(request["common_environment"])
    for module in request["preload"]:
        importlib.import_module(module)
    pending, running, results = list(request["jobs"]), {}, []
    with tempfile.TemporaryDirectory() as scratch:
        while pending or running:
            while pending and len(running) < request["parallel"]:
                job = pending.pop(0)
                result_path = os.path.join(scratch, f"{job['name']}.json")
                pid = os.fork()
                if pid == 0:
                    os.dup2(2, 1)  # the function's logs go to stderr; stdout carries the results
                    try:
                        run_job(job, result_path)
                    finally:
                        os._exit(0)
                running[pid] = (job, result_path)
            pid, status = os.wait()
            job, result_path = running.pop(pid)
            path = Path(result_path)
            results.append(
                json.loads(path.read_text())
                if path.exists()
                else {"name": job["name"], "error": f"process ended with status {status}"}
            )
    json.dump({"sys_path": sys.path, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
