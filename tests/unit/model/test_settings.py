"""Model server settings: environment prefix, defaults and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model.assembly import create_backend, create_model
from model.engine import PytesseractBackend, TesserocrBackend
from model.settings import ModelSettings

pytestmark = pytest.mark.unit


def test_defaults_match_the_documented_ports_and_name() -> None:
    settings = ModelSettings()
    assert (settings.model_name, settings.http_port, settings.grpc_port) == (
        "ocr-model",
        8080,
        8081,
    )
    assert settings.engine == "tesserocr"


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_MODEL_GRPC_PORT", "9001")
    monkeypatch.setenv("OCR_MODEL_ENGINE", "pytesseract")
    settings = ModelSettings()
    assert settings.grpc_port == 9001
    assert isinstance(create_backend(settings), PytesseractBackend)
    assert isinstance(create_backend(ModelSettings(engine="tesserocr")), TesserocrBackend)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("engine", "easyocr"),
        ("grpc_port", "0"),
        ("workers", "-1"),
        ("default_psm", "14"),
        ("model_name", "Bad Name"),
        ("tessdata_dir", "/nonexistent/tessdata"),
    ],
)
def test_invalid_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    monkeypatch.setenv(f"OCR_MODEL_{field.upper()}", value)
    with pytest.raises(ValidationError):
        ModelSettings()


def test_default_language_must_be_installed() -> None:
    with pytest.raises(ValueError, match="not installed"):
        create_model(ModelSettings(default_lang="zzz"))


def test_model_metadata_types() -> None:
    model = create_model(ModelSettings())
    assert model.name == "ocr-model"
    # Every output the contract has, the non-default ones too, in the contract's order.
    assert [t["name"] for t in model.get_output_types()] == [
        "text",
        "confidence",
        "words",
        "hocr",
        "tsv",
        "alto",
        "pdf",
        "page",
        "preview",
    ]
    assert model.get_input_types() == [{"name": "image", "datatype": "BYTES", "shape": [1]}]
