"""REST API for LMS integrations.

``create_app`` is imported on first use, so that importing a submodule (the stores, the batch
task that workers run) does not build the whole application and import it back in a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from service.api.app import create_app

        return create_app
    raise AttributeError(f"module 'service.api' has no attribute {name!r}")
