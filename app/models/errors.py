"""Errors of the model layer; each message is one line meant for the person running the model."""

from __future__ import annotations

from app.core.errors import SitelabelError


class ModelError(SitelabelError):
    """A model cannot be used as asked (unknown name, no models folder, bad input)."""


class ManifestError(ModelError):
    """A manifest is missing, unreadable or has a bad setting."""


class ModelRefused(ModelError):
    """A model failed a safety check (hash, operator domains, external data, input shape)."""
