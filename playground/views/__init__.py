from playground.views.endpoints import (
    endpoint_delete,
    endpoint_edit,
    endpoint_list,
    endpoint_test,
)
from playground.views.keys import (
    key_delete,
    key_edit,
    key_fields,
    key_list,
    key_test,
    key_toggle,
    team_keys,
)
from playground.views.pages import home, session_page
from playground.views.panes import pane_editor, pane_params
from playground.views.send import send
from playground.views.stop import stop_pane, stop_session

__all__ = [
    "endpoint_delete",
    "endpoint_edit",
    "endpoint_list",
    "endpoint_test",
    "home",
    "key_delete",
    "key_edit",
    "key_fields",
    "key_list",
    "key_test",
    "key_toggle",
    "pane_editor",
    "pane_params",
    "send",
    "session_page",
    "stop_pane",
    "stop_session",
    "team_keys",
]
