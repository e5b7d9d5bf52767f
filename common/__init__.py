"""What both services' entry points share beyond telemetry: loading their settings."""

from .settings import SettingsLoadError, load_settings

__all__ = ["SettingsLoadError", "load_settings"]
