# syntax=docker/dockerfile:1
# crisisd: crisis detection and escalation daemon (docs/operations.md has the `docker run` example).
#
#   docker build -t crisisd .
#   docker run --rm crisisd check-config /usr/local/lib/python3.11/site-packages/config/crisisd.yaml
#
# .ci/container-smoke runs the same wheel build, install and start commands without a Docker engine.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- stage 1: build the crisisd wheel and collect the wheels of its dependencies ----------------------
# The dependencies are the files pinned in requirements.lock (each version with the sha256 of its files:
# pip's hash-checking mode; `bash .ci/lock` regenerates it), not whatever setup.cfg's ranges allow on the day
# of the build; crisisd itself is built from these sources, without resolving dependencies again.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md requirements.lock ./
COPY config ./config
COPY daemon ./daemon
COPY detectors ./detectors
COPY notifiers ./notifiers
RUN python -m pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock \
 && python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- stage 2: the runtime; only the installed wheels (the locked versions), no build tools, no sources -
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="crisisd" \
      org.opencontainers.image.description="Crisis detection and escalation daemon for social customer care: Kafka in, Slack out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="docs/operations.md"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRISISD_STATE_DIR=/var/lib/crisisd \
    CRISISD_LOG_FORMAT=json \
    CRISISD_HTTP_HOST=0.0.0.0 \
    CRISISD_HTTP_PORT=8080 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib

RUN groupadd --system --gid 10001 crisisd \
 && useradd --system --uid 10001 --gid crisisd --home-dir /var/lib/crisisd --no-create-home \
        --shell /usr/sbin/nologin crisisd \
 && mkdir -p /var/lib/crisisd \
 && chown crisisd:crisisd /var/lib/crisisd

# The wheels are bind-mounted from stage 1, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links /wheels crisisd \
 && crisisd --version

USER 10001:10001
WORKDIR /var/lib/crisisd
VOLUME ["/var/lib/crisisd"]
EXPOSE 8080
STOPSIGNAL SIGTERM

# Liveness: /healthz answers 200 while the consumer loop turns (python, no curl in a slim image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRISISD_HTTP_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["crisisd"]
CMD ["run"]
