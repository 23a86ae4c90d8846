from django.urls import path

from playground.live.consumer import SessionConsumer
from playground.live.shared_consumer import SharedSessionConsumer

websocket_urlpatterns = [
    path("ws/sessions/<int:session_id>/", SessionConsumer.as_asgi()),
    path("ws/shared/<str:token>/", SharedSessionConsumer.as_asgi()),
]
