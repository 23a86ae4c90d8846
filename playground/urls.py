from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from playground import views
from playground.signin import counted_sign_in, sign_in

# What fails outside a view: 503 with a sentence when the database is away, else Django's.
handler500 = "playground.database_away.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("send/", views.send, name="send_new"),
    path("s/<int:session_id>/", views.session_page, name="session"),
    path("s/<int:session_id>/send/", views.send, name="send"),
    path("s/<int:session_id>/export.md", views.session_export, {"fmt": "md"}, name="export_md"),
    path(
        "s/<int:session_id>/export.json",
        views.session_export,
        {"fmt": "json"},
        name="export_json",
    ),
    path("s/<int:session_id>/stop/", views.stop_session, name="stop_session"),
    path("sessions/", views.session_list_page, name="session_list"),
    path("sessions/search/", views.session_search_results, name="session_search"),
    path("s/<int:session_id>/rename/", views.session_rename, name="session_rename"),
    path("s/<int:session_id>/item/", views.session_item, name="session_item"),
    path("s/<int:session_id>/pin/", views.session_pin, name="session_pin"),
    path("s/<int:session_id>/delete/", views.session_delete, name="session_delete"),
    path("s/<int:session_id>/undo/", views.session_undo, name="session_undo"),
    path("s/<int:session_id>/duplicate/", views.session_duplicate, name="session_duplicate"),
    path("estimate/", views.estimate, name="estimate_new"),
    path("s/<int:session_id>/estimate/", views.estimate, name="estimate"),
    path("panes/<int:pane_id>/stop/", views.stop_pane, name="stop_pane"),
    path("s/<int:session_id>/retry/", views.retry_failed, name="retry_failed"),
    path("s/<int:session_id>/policy/", views.context_policy, name="context_policy"),
    path("s/<int:session_id>/fork/", views.fork, name="fork"),
    path("s/<int:session_id>/rematch/", views.rematch_session, name="rematch"),
    path("answers/<int:response_id>/again/", views.regenerate, name="regenerate"),
    path("answers/<int:response_id>/choose/", views.choose, name="choose"),
    path("answers/<int:response_id>/exclude/", views.exclude, name="exclude"),
    path("pane/new/", views.pane_editor, name="pane_editor"),
    path("pane/<int:position>/params/", views.pane_params, name="pane_params"),
    path("endpoints/", views.endpoint_list, name="endpoints"),
    path("endpoints/<int:endpoint_id>/", views.endpoint_edit, name="endpoint_edit"),
    path("endpoints/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("endpoints/<int:endpoint_id>/test/", views.endpoint_test, name="endpoint_test"),
    path("connection-tests/<str:token>/", views.connection_test, name="connection_test"),
    path("sets/", views.set_list, name="sets"),
    path("sets/save/", views.set_save, name="set_save"),
    path("sets/<int:set_id>/rename/", views.set_rename, name="set_rename"),
    path("sets/<int:set_id>/sharing/", views.set_sharing, name="set_sharing"),
    path("sets/<int:set_id>/delete/", views.set_delete, name="set_delete"),
    path("usage/", views.usage_page, name="usage"),
    path("teams/<int:team_id>/usage/", views.team_usage_page, name="team_usage"),
    path("teams/", views.team_list, name="teams"),
    path("teams/active/", views.active_team_set, name="active_team"),
    path("teams/<int:team_id>/", views.team_page, name="team"),
    path("teams/<int:team_id>/members/", views.team_add_member, name="team_add_member"),
    path(
        "teams/<int:team_id>/members/<int:member_id>/role/",
        views.team_member_role,
        name="team_member_role",
    ),
    path(
        "teams/<int:team_id>/members/<int:member_id>/remove/",
        views.team_member_remove,
        name="team_member_remove",
    ),
    path("teams/<int:team_id>/leave/", views.team_leave, name="team_leave"),
    path(
        "teams/<int:team_id>/endpoints/<int:endpoint_id>/unshare/",
        views.team_endpoint_unshare,
        name="team_endpoint_unshare",
    ),
    path("keys/", views.key_list, name="keys"),
    path("keys/fields/", views.key_fields, name="key_fields"),
    path("keys/<int:credential_id>/", views.key_edit, name="key_edit"),
    path("keys/<int:credential_id>/toggle/", views.key_toggle, name="key_toggle"),
    path("keys/<int:credential_id>/delete/", views.key_delete, name="key_delete"),
    path("keys/<int:credential_id>/test/", views.key_test, name="key_test"),
    path("teams/<int:team_id>/keys/", views.team_keys, name="team_keys"),
    path("s/<int:session_id>/share/", views.share_panel, name="share"),
    path("share-links/<int:link_id>/revoke/", views.share_revoke, name="share_revoke"),
    path("shared/<str:token>/", views.shared_page, name="shared"),
    # A turn's videos, recordings and frames; relative to both pages ("media/…").
    path("s/<int:session_id>/media/<int:turn_id>/<int:n>/", views.turn_media, name="turn_media"),
    path(
        "s/<int:session_id>/media/<int:turn_id>/<int:n>/frame/<int:frame>/",
        views.turn_media,
        name="turn_media_frame",
    ),
    path(
        "shared/<str:token>/media/<int:turn_id>/<int:n>/",
        views.shared_turn_media,
        name="shared_turn_media",
    ),
    path(
        "shared/<str:token>/media/<int:turn_id>/<int:n>/frame/<int:frame>/",
        views.shared_turn_media,
        name="shared_turn_media_frame",
    ),
    path("shared/<str:token>/fork/", views.shared_fork, name="shared_fork"),
    path(
        "shared/<str:token>/export.md", views.shared_export, {"fmt": "md"}, name="shared_export_md"
    ),
    path(
        "shared/<str:token>/export.json",
        views.shared_export,
        {"fmt": "json"},
        name="shared_export_json",
    ),
    path("login/", sign_in, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin's own sign-in view (its form is CountedAdminSignIn), finished as the site's.
    path("admin/login/", counted_sign_in(admin.site.login)),
    path("admin/", admin.site.urls),
]
