"""The ASGI application daphne serves: HTTP (Django views, static files) and websockets."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application() does first

from playground.asgi_handler import OneHopASGIHandler  # noqa: E402

django_asgi = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware, SessionMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from playground.body_limit import BodyLimit  # noqa: E402
from playground.database_away import SignInOrDatabaseAway  # noqa: E402
from playground.routing import websocket_urlpatterns  # noqa: E402

# daphne has no static file server of its own; the app serves /static/ (vendored htmx, CSS).
# Every request's body is bounded before anything reads it (playground/body_limit.py).
http_app = BodyLimit(ASGIStaticFilesHandler(django_asgi) if settings.STATIC_URL else django_asgi)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        # Channels' AuthMiddlewareStack, but a sign-in that meets the database away leaves
        # the socket to its consumer, which says so (playground/database_away.py).
        "websocket": AllowedHostsOriginValidator(
            CookieMiddleware(
                SessionMiddleware(SignInOrDatabaseAway(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)

# What is loaded by now (Django, the URLconf and every view, the templates' tags, the
# catalog's code) lives as long as the process: out of the collector's reach, a full
# collection no longer walks those ~140,000 objects. On this 2-core host one took 70 to
# 250 ms, a pause for whichever request set it off (bench/session_open.py).
import playground.urls  # noqa: E402, F401

gc.collect()
gc.freeze()
