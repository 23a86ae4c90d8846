"""docker-compose.yml and the Dockerfile, checked without Docker: the file's shape against
a schema of the Compose features we use, then the facts the deployment relies on.

No database and no fixtures: runs as plain functions (also with ``-p no:django``).
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

_string_list = {"type": "array", "items": {"type": "string"}}
_command = {"oneOf": [{"type": "string", "minLength": 1}, {**_string_list, "minItems": 1}]}
_duration = {"type": "string", "pattern": r"^(\d+(\.\d+)?(us|ms|s|m|h))+$"}
_scalar = {"type": ["string", "number", "boolean", "null"]}

# The subset of the Compose specification that docker-compose.yml uses. Services reject
# unknown keys, so a misspelt key (`depend_on`, `healthcheck.interval: 5`) fails here
# instead of being ignored by Compose.
COMPOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["services"],
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/service"},
        },
        "volumes": {
            "type": "object",
            "additionalProperties": {"oneOf": [{"type": "null"}, {"type": "object"}]},
        },
    },
    "$defs": {
        "service": {
            "type": "object",
            "additionalProperties": False,
            "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
            "properties": {
                "image": {"type": "string", "minLength": 1},
                "build": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["context"],
                            "properties": {
                                "context": {"type": "string"},
                                "dockerfile": {"type": "string"},
                                "target": {"type": "string"},
                                "args": {"type": "object"},
                            },
                        },
                    ]
                },
                "command": _command,
                "entrypoint": _command,
                "environment": {
                    "oneOf": [
                        {
                            "type": "object",
                            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                            "additionalProperties": _scalar,
                        },
                        _string_list,
                    ]
                },
                "env_file": {
                    "oneOf": [
                        {"type": "string"},
                        {
                            "type": "array",
                            "items": {
                                "oneOf": [
                                    {"type": "string"},
                                    {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["path"],
                                        "properties": {
                                            "path": {"type": "string"},
                                            "required": {"type": "boolean"},
                                        },
                                    },
                                ]
                            },
                        },
                    ]
                },
                "depends_on": {
                    "oneOf": [
                        _string_list,
                        {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["condition"],
                                "properties": {
                                    "condition": {
                                        "enum": [
                                            "service_started",
                                            "service_healthy",
                                            "service_completed_successfully",
                                        ]
                                    },
                                    "restart": {"type": "boolean"},
                                    "required": {"type": "boolean"},
                                },
                            },
                        },
                    ]
                },
                "healthcheck": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["test"],
                    "properties": {
                        "test": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    **_string_list,
                                    "minItems": 2,
                                    "prefixItems": [{"enum": ["CMD", "CMD-SHELL"]}],
                                },
                            ]
                        },
                        "interval": _duration,
                        "timeout": _duration,
                        "retries": {"type": "integer", "minimum": 1},
                        "start_period": _duration,
                        "start_interval": _duration,
                    },
                },
                "volumes": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[^:]+:[^:]+(:ro|:rw)?$"},
                },
                "ports": {"type": "array", "items": {"type": "string"}},
                "profiles": {**_string_list, "minItems": 1},
                "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
                "stop_grace_period": _duration,
                "container_name": {"type": "string"},
            },
        }
    },
}


@functools.cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec["condition"] for name, spec in deps.items()}


def test_compose_file_matches_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(COMPOSE_SCHEMA)
    errors = sorted(
        jsonschema.Draft202012Validator(COMPOSE_SCHEMA).iter_errors(compose()),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_the_schema_catches_mistakes() -> None:
    """The schema is strict enough to matter: each of these broken files fails it."""
    validator = jsonschema.Draft202012Validator(COMPOSE_SCHEMA)
    web = services()["web"]
    broken = [
        {"services": {"web": {**web, "depend_on": ["redis"]}}},
        {"services": {"web": {**web, "depends_on": {"redis": {"condition": "healthy"}}}}},
        {"services": {"web": {"command": ["daphne"]}}},
        {"services": {"web": {**web, "healthcheck": {"test": ["CMD"], "interval": 5}}}},
        {"services": {}},
    ]
    for document in broken:
        assert not validator.is_valid(document), document


def test_web_runs_daphne_on_the_asgi_application() -> None:
    web = services()["web"]
    command = argv(web)
    assert command[0] == "daphne"
    assert "playground.asgi:application" in command
    assert command[command.index("-b") + 1] == "0.0.0.0"
    assert command[command.index("-p") + 1] == "8000"
    assert any(port.endswith(":8000") for port in web.get("ports", []))


def test_worker_runs_celery_and_can_be_scaled() -> None:
    worker = services()["worker"]
    command = argv(worker)
    assert command[0] == "celery"
    assert command[command.index("-A") + 1] == "playground"
    assert "worker" in command
    assert command[command.index("--pool") + 1] == "threads"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    # `docker compose up --scale worker=N` fails with a fixed name or a fixed host port.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_no_service_pins_a_container_name() -> None:
    assert [name for name, s in services().items() if "container_name" in s] == []


def test_backing_services_exist_with_healthchecks() -> None:
    redis = services()["redis"]
    postgres = services()["postgres"]
    assert redis["image"].split(":")[0] == "redis"
    assert redis["image"].split(":")[1].split(".")[0] == "7"
    assert postgres["image"].split(":")[0] == "postgres"
    assert postgres["image"].split(":")[1].split(".")[0] == "15"
    assert "healthcheck" in redis and "healthcheck" in postgres
    # PostgreSQL keeps its data in a named volume declared at the top level.
    named = {v.split(":")[0] for v in postgres["volumes"]}
    assert any(v in (compose().get("volumes") or {}) for v in named)
    assert any(v.split(":")[1] == "/var/lib/postgresql/data" for v in postgres["volumes"])


def test_depends_on_targets_exist_and_wait_for_the_right_thing() -> None:
    all_services = services()
    for name, service in all_services.items():
        for target, condition in depends_on(service).items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            assert target != name
            if condition == "service_healthy":
                assert "healthcheck" in all_services[target], f"{target} has no healthcheck"
            # A service in an optional profile cannot be a dependency of an always-on one.
            if "profiles" in all_services[target]:
                assert set(all_services[target]["profiles"]) <= set(service.get("profiles", []))
    for name in ("web", "worker"):
        deps = depends_on(all_services[name])
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("redis") == "service_healthy", name
    migrate = all_services["migrate"]
    assert argv(migrate)[-2:] == ["migrate", "--noinput"]
    assert migrate.get("restart", "no") == "no"


def test_the_long_running_services_come_back_after_a_crash() -> None:
    """A worker killed mid-answer is started again by Docker (its panes are ended
    "interrupted" by the watchdog with what they had shown); web and Redis too."""
    all_services = services()
    for name in ("web", "worker", "redis", "postgres"):
        assert all_services[name].get("restart") in ("unless-stopped", "on-failure", "always"), name
    # Long enough for Celery's warm shutdown to let in-flight panes end (the worker's own
    # grace, PLAYGROUND_SHUTDOWN_GRACE_SECONDS, is shorter) before Docker's SIGKILL.
    assert all_services["worker"]["stop_grace_period"] == "60s"


def test_redis_keeps_its_data_in_an_append_only_file_written_every_second() -> None:
    redis = services()["redis"]
    command = argv(redis)
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])


def placeholder(value: str) -> str:
    """``value`` with each ``${VAR...}`` replaced by ``VAR-value``, as if interpolated (the
    raw text does not parse as a URL: a ``:?message`` holds spaces and a ``?``)."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", r"\1-value", value)


def test_services_using_the_database_point_at_the_postgres_service() -> None:
    all_services = services()
    users = {
        name
        for name, service in all_services.items()
        if "postgres" in depends_on(service) or "DATABASE_URL" in environment(service)
    }
    assert {"web", "worker", "migrate"} <= users
    pg_env = environment(all_services["postgres"])
    for name in users:
        env = environment(all_services[name])
        url = urlsplit(placeholder(env.get("DATABASE_URL", "")))
        assert url.scheme in {"postgres", "postgresql"}, name
        assert url.hostname == "postgres", name
        assert url.port in (None, 5432), name
        assert url.path.lstrip("/") == pg_env["POSTGRES_DB"], name
        assert url.username == pg_env["POSTGRES_USER"], name
        # The same variable feeds both sides, so the password cannot drift.
        assert url.password == placeholder(pg_env["POSTGRES_PASSWORD"]), name
        assert url.password == "POSTGRES_PASSWORD-value", name
        assert urlsplit(placeholder(env["REDIS_URL"])).hostname == "redis", name
        for key in ("SECRET_KEY", "ALLOWED_HOSTS", "PLAYGROUND_LOCAL_MODEL_URL"):
            assert key in env, f"{name} lacks {key}"


def test_the_app_needs_its_own_vault_key_and_runs_behind_tls() -> None:
    """Every app service (web, worker, migrate) is given PLAYGROUND_VAULT_KEY, which Compose
    refuses to start without (settings would refuse too: DEBUG off, SECRET_KEY set), so the
    vault is never derived from SECRET_KEY; and PLAYGROUND_TLS is on unless turned off
    (Secure cookies, HSTS), for the TLS-terminating proxy the header asks for."""
    header = COMPOSE.read_text().split("\nname:", 1)[0]
    assert "PLAYGROUND_VAULT_KEY" in header and "Fernet" in header  # how to make one
    for name in ("web", "worker", "migrate"):
        env = environment(services()[name])
        match = _BRACED.match(env["PLAYGROUND_VAULT_KEY"].removeprefix("$"))
        assert match, name
        assert match.group(1) == "PLAYGROUND_VAULT_KEY" and match.group(4) == ":?", name
        assert env["PLAYGROUND_TLS"] == "${PLAYGROUND_TLS:-true}", name
        assert env["DEBUG"] == "false", name


def test_the_web_takes_the_client_address_from_its_proxy_and_only_the_proxy_reaches_it() -> None:
    """Limits per client address (sign-in, share-link guessing) count each visitor, not the
    proxy: daphne reads X-Forwarded-For, and the port is published on loopback by default,
    so no one but the proxy on the host can send that header."""
    web = services()["web"]
    assert "--proxy-headers" in argv(web)
    (published,) = web["ports"]
    assert published.startswith("${WEB_BIND:-127.0.0.1}:"), published


def test_local_model_is_optional() -> None:
    local = services()["localmodel"]
    assert local["profiles"] == ["local"]
    command = argv(local)
    assert "scripts/local_model.py" in command
    assert command[command.index("--host") + 1] == "0.0.0.0"


_VARIABLE = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*)|(:?\?)(.*))?\}$", re.S)


def interpolations(text: str) -> list[str]:
    """Every ``$...`` that Compose would interpolate (``$$`` is a literal dollar)."""
    return [m.group(1) for m in _VARIABLE.finditer(text) if m.group(1) != "$"]


def test_interpolation_helper() -> None:
    assert interpolations("a $$HOME ${A:-x} $B ${C:?say}") == ["{A:-x}", "B", "{C:?say}"]


def test_every_variable_has_a_default_or_a_message() -> None:
    used = interpolations(COMPOSE.read_text())
    assert used, "expected ${...} variables in docker-compose.yml"
    for raw in used:
        match = _BRACED.match(raw)
        assert match, f"${raw}: use ${{VAR:-default}} or ${{VAR:?message}}, not a bare $VAR"
        name, default_op, _default, required_op, message = match.groups()
        assert default_op or required_op, f"${{{name}}} has neither a default nor a message"
        if required_op:
            assert message and message.strip(), f"${{{name}:?}} needs a message saying what to set"
        assert "$" not in (_default or "") + (message or ""), f"nested variable in ${raw}"


def test_dockerfile_builds_on_python_311() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    froms = [line.split() for line in lines if line.upper().startswith("FROM ")]
    assert froms, "Dockerfile has no FROM"
    stages = {f[f.index("AS") + 1] for f in froms if "AS" in f}
    assert {"app", "localmodel"} <= stages
    # Every stage starts from the official Python 3.11 image (or an earlier stage).
    for words in froms:
        image = words[1]
        assert image in stages or re.fullmatch(r"python:3\.11(\.\d+)?(-slim)?(-\w+)?", image), image
    for service in services().values():
        build = service.get("build")
        if isinstance(build, dict) and "target" in build:
            assert build["target"] in stages
