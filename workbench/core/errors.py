"""Errors a user can act on: each carries a stable code and a sentence."""

from __future__ import annotations


class WorkbenchError(Exception):
    """A failure to report to the user as a sentence, never as a traceback."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(WorkbenchError):
    code = "invalid_input"


class ProjectNotFound(WorkbenchError):
    code = "project_not_found"


class ProjectExists(WorkbenchError):
    code = "project_exists"


class ProjectLocked(WorkbenchError):
    code = "project_locked"


class UnsafePath(WorkbenchError):
    code = "unsafe_path"


class SchemaTooNew(WorkbenchError):
    code = "schema_too_new"


class FileOperationError(WorkbenchError):
    code = "file_operation_failed"
