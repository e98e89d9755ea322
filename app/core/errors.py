"""Errors the domain raises; every layer above maps them to a clear message for the user."""

from __future__ import annotations


class SitelabelError(Exception):
    """Base of every error Sitelabel raises on purpose. Its text is shown to the user as is."""


class ValidationError(SitelabelError, ValueError):
    """Input that does not fit the expected shape (an annotation, an ontology, a setting)."""


class ConflictError(SitelabelError):
    """A save was based on a stale version: someone else saved a newer one first."""

    def __init__(
        self,
        message: str,
        *,
        annotation_id: int | None = None,
        expected_version: int | None = None,
        current_version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.annotation_id = annotation_id
        self.expected_version = expected_version
        self.current_version = current_version


class NotFoundError(SitelabelError, LookupError):
    """A record that was asked for does not exist."""


class PermissionDenied(SitelabelError, PermissionError):
    """The acting user's role does not allow the action."""
