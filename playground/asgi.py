"""The ASGI application daphne serves: HTTP (Django views, static files) and websockets."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from playground.asgi_handler import OneHopASGIHandler  # noqa: E402

django_asgi = OneHopASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from playground.routing import websocket_urlpatterns  # noqa: E402

# daphne has no static file server of its own; the app serves /static/ (vendored htmx, CSS).
http_app = ASGIStaticFilesHandler(django_asgi) if settings.STATIC_URL else django_asgi

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
