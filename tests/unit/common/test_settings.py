"""Bad settings end either service with one line naming the variable and a non-zero exit."""

from __future__ import annotations

import pytest

from common import SettingsLoadError, load_settings
from common.settings import EXIT_BAD_SETTINGS
from gateway.settings import GatewaySettings
from model.settings import ModelSettings
from tests.support.processes import settings_refusal

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("cls", "variable", "value", "problem"),
    [
        (ModelSettings, "OCR_MODEL_WORKERS", "banana", "valid integer"),
        (ModelSettings, "OCR_MODEL_ENGINE", "tesseract9", "'tesserocr' or 'pytesseract'"),
        (ModelSettings, "OCR_MODEL_TESSDATA_DIR", "/nonexistent", "tessdata directory"),
        (GatewaySettings, "OCR_GATEWAY_PORT", "banana", "valid integer"),
        (GatewaySettings, "OCR_GATEWAY_PORT", "70000", "less than or equal to 65535"),
    ],
)
def test_one_line_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    cls: type[ModelSettings] | type[GatewaySettings],
    variable: str,
    value: str,
    problem: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsLoadError) as caught:
        load_settings(cls)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {variable}: ")
    assert problem in message


def test_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_GATEWAY_MAX_UPLOAD_BYTES", "sekrit-looking-value")
    with pytest.raises(SettingsLoadError) as caught:
        load_settings(GatewaySettings)
    assert "sekrit" not in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = load_settings(ModelSettings)
    with pytest.raises(ValueError, match="frozen"):
        settings.workers = 3


@pytest.mark.parametrize(
    ("module", "variable"), [("model", "OCR_MODEL_WORKERS"), ("gateway", "OCR_GATEWAY_PORT")]
)
def test_the_service_exits_with_one_line(module: str, variable: str) -> None:
    assert EXIT_BAD_SETTINGS == 2  # what settings_refusal expects
    assert variable in settings_refusal(module, {variable: "banana"})
