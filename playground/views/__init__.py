from playground.views.connection_tests import connection_test
from playground.views.endpoints import (
    endpoint_delete,
    endpoint_edit,
    endpoint_list,
    endpoint_test,
)
from playground.views.estimate import estimate
from playground.views.exports import session_export
from playground.views.keys import (
    key_delete,
    key_edit,
    key_fields,
    key_list,
    key_test,
    key_toggle,
    team_keys,
)
from playground.views.media_files import shared_turn_media, turn_media
from playground.views.pages import home, session_page
from playground.views.panes import pane_editor, pane_params
from playground.views.send import send
from playground.views.sessions import (
    session_delete,
    session_duplicate,
    session_item,
    session_list_page,
    session_pin,
    session_rename,
    session_search_results,
    session_undo,
)
from playground.views.sets import set_delete, set_list, set_rename, set_save, set_sharing
from playground.views.share_links import share_panel, share_revoke
from playground.views.shared import shared_export, shared_fork, shared_page
from playground.views.steer import (
    choose,
    context_policy,
    exclude,
    fork,
    regenerate,
    rematch_session,
    retry_failed,
)
from playground.views.stop import stop_pane, stop_session
from playground.views.teams import (
    active_team_set,
    team_add_member,
    team_endpoint_unshare,
    team_leave,
    team_list,
    team_member_remove,
    team_member_role,
    team_page,
)
from playground.views.usage_pages import team_usage_page, usage_page

__all__ = [
    "shared_turn_media",
    "turn_media",
    "active_team_set",
    "choose",
    "connection_test",
    "context_policy",
    "exclude",
    "fork",
    "regenerate",
    "rematch_session",
    "retry_failed",
    "endpoint_delete",
    "endpoint_edit",
    "endpoint_list",
    "endpoint_test",
    "estimate",
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
    "set_delete",
    "set_list",
    "set_rename",
    "set_save",
    "set_sharing",
    "share_panel",
    "share_revoke",
    "shared_export",
    "shared_fork",
    "shared_page",
    "session_export",
    "session_delete",
    "session_duplicate",
    "session_item",
    "session_list_page",
    "session_page",
    "session_pin",
    "session_rename",
    "session_search_results",
    "session_undo",
    "stop_pane",
    "stop_session",
    "team_usage_page",
    "usage_page",
    "team_add_member",
    "team_endpoint_unshare",
    "team_leave",
    "team_list",
    "team_member_remove",
    "team_member_role",
    "team_page",
    "team_keys",
]
