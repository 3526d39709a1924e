"""REST API for LMS integrations."""

from service.api.app import create_app

__all__ = ["create_app"]
