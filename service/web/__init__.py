"""The teacher review page: server-rendered shell plus light JS that calls the REST API."""

from service.web.routes import mount_web

__all__ = ["mount_web"]
