"""The models component: serves the uploaded models gpufarm assigns to this agent.

Every `poll_s` it asks for its models (`POST /api/v1/gpu/agents/{instance_id}/models`, which
also hands it `loading` models it may serve). For each new one, in a thread of its own:
- a format it cannot serve (anything but ONNX) is reported `failed` with the reason at once;
- an ONNX model is downloaded through the presigned GET that came with it (the agent holds no
  AWS credentials for it), loaded into an onnxruntime session (CUDA where the host has a GPU and
  onnxruntime offers the provider, else CPU), and reported `serving` at
  `<agent url>/models/<id>/predict`; one that does not load is reported `failed` with why.
A model no longer in the answer (deleted, moved elsewhere) is unloaded.

`POST /models/{model_id}/predict` takes `{"inputs": ..., "parameters": ...}`: `inputs` is an
object of input name → (nested) list, or, for a single-input model, the list itself; it answers
`{"outputs": {output name: list}, "metadata": {"runtime", "provider", "used_gpu"}}`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx

from aiplane_agent.api import ApiError
from aiplane_agent.components import AgentContext, BaseComponent, HttpRequest, HttpResponse, Route
from aiplane_agent.log import log
from aiplane_agent.services import AssignmentPoll

SERVED_FORMATS = ("onnx",)
DOWNLOAD_TIMEOUT_S = 300.0
ONNX_TYPES = {  # onnxruntime's type names → numpy dtypes
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class InputError(ValueError):
    """The inputs do not fit the model (answered 400)."""


def execution_providers(has_gpu: bool) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if has_gpu and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxModel:
    """One loaded model: an onnxruntime session and how to feed it."""

    def __init__(self, path: Path, providers: list[str]) -> None:
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        self.provider = self.session.get_providers()[0]
        self.inputs = self.session.get_inputs()

    def predict(self, inputs: Any) -> dict[str, Any]:
        import numpy

        if not isinstance(inputs, dict):
            if len(self.inputs) != 1:
                raise InputError(f"this model takes {len(self.inputs)} inputs: name them ({self._names()})")
            inputs = {self.inputs[0].name: inputs}
        missing = [spec.name for spec in self.inputs if spec.name not in inputs]
        unknown = sorted(set(inputs) - {spec.name for spec in self.inputs})
        if missing or unknown:
            raise InputError(
                f"the model's inputs are {self._names()}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        feed = {}
        for spec in self.inputs:
            try:
                feed[spec.name] = numpy.asarray(inputs[spec.name], dtype=ONNX_TYPES.get(spec.type, "float32"))
            except (TypeError, ValueError) as error:
                raise InputError(f"input {spec.name!r} is not a {spec.type}: {error}") from None
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        try:
            results = self.session.run(None, feed)
        except InvalidArgument as error:  # wrong shapes, ranks or types
            raise InputError(str(error)) from None
        names = [output.name for output in self.session.get_outputs()]
        return {name: value.tolist() for name, value in zip(names, results, strict=True)}

    def _names(self) -> str:
        return ", ".join(f"{spec.name} {spec.type} {spec.shape}" for spec in self.inputs)


class ModelServing(BaseComponent):
    name = "models"

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.directory = ctx.component_dir("models")
        self.models: dict[str, OnnxModel] = {}
        self.loading: set[str] = set()
        self.lock = threading.Lock()
        self.poll = AssignmentPoll("models")

    def routes(self) -> list[Route]:
        return [Route("POST", "/models/{model_id}/predict", self.predict)]

    def tick(self, ctx: AgentContext) -> None:
        assigned = self.poll.assigned(
            ctx.config.poll_s, lambda: ctx.api.gpufarm("POST", f"/api/v1/gpu/agents/{ctx.instance_id}/models")
        )
        if assigned is None:
            return
        wanted = {model["model_id"]: model for model in assigned}
        with self.lock:
            for model_id in [model_id for model_id in self.models if model_id not in wanted]:
                del self.models[model_id]
                (self.directory / f"{model_id}.onnx").unlink(missing_ok=True)
                log("model unloaded", model_id=model_id)
            new = [
                model
                for model_id, model in wanted.items()
                if model_id not in self.models and model_id not in self.loading
            ]
            self.loading.update(model["model_id"] for model in new)
        for model in new:
            threading.Thread(target=self._load, args=(model,), name=f"model-{model['model_id']}", daemon=True).start()

    def _load(self, model: dict[str, Any]) -> None:
        model_id = model["model_id"]
        try:
            if model["format"] not in SERVED_FORMATS:
                self.report(
                    model_id,
                    "failed",
                    error=f"this agent serves {', '.join(SERVED_FORMATS)} models with "
                    f"onnxruntime; {model['format']} models are not served",
                )
                return
            path = self.directory / f"{model_id}.onnx"
            try:
                self._download(model["download_url"], path)
                loaded = OnnxModel(path, execution_providers(bool(self.ctx.inventory.gpus)))
            except Exception as error:
                path.unlink(missing_ok=True)
                self.report(
                    model_id, "failed", error=f"could not load the model: {type(error).__name__}: {error}"[:1000]
                )
                return
            with self.lock:
                self.models[model_id] = loaded
            if self.report(model_id, "serving", endpoint=self.endpoint(model_id)):
                log("model serving", model_id=model_id, provider=loaded.provider)
            else:
                with self.lock:
                    self.models.pop(model_id, None)
        finally:
            with self.lock:
                self.loading.discard(model_id)

    def endpoint(self, model_id: str) -> str:
        return f"{self.ctx.url}/models/{model_id}/predict"

    @staticmethod
    def _download(url: str, path: Path) -> None:
        partial = path.with_suffix(".part")
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT_S) as answer:
            answer.raise_for_status()
            with open(partial, "wb") as handle:
                for chunk in answer.iter_bytes(1 << 20):
                    handle.write(chunk)
        partial.replace(path)

    def report(self, model_id: str, status: str, **fields: Any) -> bool:
        try:
            self.ctx.api.gpufarm(
                "POST",
                f"/api/v1/gpu/agents/{self.ctx.instance_id}/models/{model_id}/state",
                {"status": status, **fields},
            )
            return True
        except ApiError as error:
            log(
                "model report refused", model_id=model_id, status=status, code=error.status_code, error=error.body[:300]
            )
        except httpx.HTTPError as error:
            log("gpufarm unreachable", error=type(error).__name__)
        return False

    def predict(self, request: HttpRequest) -> HttpResponse:
        model_id = request.path_params["model_id"]
        with self.lock:
            model = self.models.get(model_id)
        if model is None:
            return HttpResponse.of_json(404, {"error": f"model {model_id} is not served here"})
        try:
            body = request.json()
        except ValueError:
            return HttpResponse.of_json(400, {"error": "the body is not JSON"})
        if not isinstance(body, dict) or body.get("inputs") is None:
            return HttpResponse.of_json(400, {"error": 'send {"inputs": ...}'})
        try:
            outputs = model.predict(body["inputs"])
        except InputError as error:
            return HttpResponse.of_json(400, {"error": str(error)})
        return HttpResponse.of_json(
            200,
            {
                "outputs": outputs,
                "metadata": {
                    "runtime": "onnxruntime",
                    "provider": model.provider,
                    "used_gpu": model.provider == "CUDAExecutionProvider",
                },
            },
        )

    def running_work(self) -> int:
        with self.lock:
            return len(self.models)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"serving": sorted(self.models), "loading": sorted(self.loading)}
