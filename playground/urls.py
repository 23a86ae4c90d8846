from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from playground import views

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
    path("estimate/", views.estimate, name="estimate_new"),
    path("s/<int:session_id>/estimate/", views.estimate, name="estimate"),
    path("panes/<int:pane_id>/stop/", views.stop_pane, name="stop_pane"),
    path("pane/new/", views.pane_editor, name="pane_editor"),
    path("pane/<int:position>/params/", views.pane_params, name="pane_params"),
    path("endpoints/", views.endpoint_list, name="endpoints"),
    path("endpoints/<int:endpoint_id>/", views.endpoint_edit, name="endpoint_edit"),
    path("endpoints/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("endpoints/<int:endpoint_id>/test/", views.endpoint_test, name="endpoint_test"),
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
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
