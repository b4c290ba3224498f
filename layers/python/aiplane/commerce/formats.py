"""The model formats the farm accepts (GET /api/v1/models/formats), and format detection."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from aiplane.errors import ValidationError


@dataclass(frozen=True)
class ModelFormat:
    format: str
    extensions: tuple[str, ...]
    framework: str
    description: str
    runtime: str  # what serves it (reported in predictions' metadata)


FORMATS: tuple[ModelFormat, ...] = (
    ModelFormat("onnx", (".onnx",), "ONNX Runtime", "Open Neural Network Exchange format", "onnxruntime"),
    ModelFormat("pytorch", (".pt", ".pth"), "PyTorch", "PyTorch model checkpoints", "torch"),
    ModelFormat("safetensors", (".safetensors",), "Hugging Face Transformers", "Safe tensor weights", "transformers"),
    ModelFormat("tensorflow", (".pb",), "TensorFlow", "TensorFlow frozen graph / SavedModel protobuf", "tensorflow"),
    ModelFormat("keras", (".keras", ".h5"), "Keras", "Keras model files", "keras"),
    ModelFormat("tflite", (".tflite",), "TensorFlow Lite", "TensorFlow Lite flatbuffers", "tflite"),
    ModelFormat("gguf", (".gguf",), "llama.cpp", "GGUF quantized language models", "llama.cpp"),
    ModelFormat("sklearn", (".pkl", ".joblib"), "scikit-learn", "Pickled scikit-learn estimators", "scikit-learn"),
    ModelFormat("xgboost", (".xgb", ".ubj"), "XGBoost", "XGBoost boosters", "xgboost"),
    ModelFormat("lightgbm", (".lgb",), "LightGBM", "LightGBM boosters", "lightgbm"),
    ModelFormat("coreml", (".mlmodel",), "Core ML", "Apple Core ML models", "coremltools"),
    ModelFormat("tensorrt", (".engine", ".plan"), "TensorRT", "Serialized TensorRT engines", "tensorrt"),
    ModelFormat("pmml", (".pmml",), "PMML", "Predictive Model Markup Language documents", "pypmml"),
)
_BY_NAME = {model_format.format: model_format for model_format in FORMATS}


def format_named(name: str) -> ModelFormat:
    return _BY_NAME[name]


def resolve_format(filename: str, declared: str | None) -> ModelFormat:
    """The declared format (its extensions must match the file's), or the one the extension names."""
    extension = PurePosixPath(filename).suffix.lower()
    if declared:
        model_format = _BY_NAME.get(declared.strip().lower())
        if model_format is None:
            raise ValidationError(
                f"format must be one of {', '.join(_BY_NAME)} (see /api/v1/models/formats)", param="format"
            )
        if extension not in model_format.extensions:
            raise ValidationError(
                f"a {model_format.format} model file ends in {', '.join(model_format.extensions)}", param="model"
            )
        return model_format
    for model_format in FORMATS:
        if extension in model_format.extensions:
            return model_format
    raise ValidationError(f"cannot detect the format of {filename!r}; see /api/v1/models/formats", param="model")
