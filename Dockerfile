# syntax=docker/dockerfile:1
#
# mscc-cds: CDS Hooks service that screens for metastatic spinal cord compression.
#
# Build (from the repository root):
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg REVISION=$(git rev-parse HEAD) -t mscc-cds:dev .
#
# Base image: python 3.11 slim on Debian 12 (bookworm), pinned by tag AND by the digest of the
# multi-platform index, so a rebuilt upstream tag cannot change what we ship. The digest was
# taken from public Dockerfiles that pin the same tag. At each release, re-check it with
#   docker buildx imagetools inspect python:3.11.15-slim-bookworm
# and replace the tag and the digest together (both FROM lines) when moving to a newer patch.

# ---------------------------------------------------------------------------------------------
# Builder: turns the project and all of its dependencies into wheels. Nothing from this stage
# reaches the runtime image except the wheel files themselves.
# ---------------------------------------------------------------------------------------------
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# The lock first (its layer is reused while dependencies do not change), then the project.
COPY requirements/runtime.lock requirements/runtime.lock
COPY pyproject.toml README* LICENSE* ./
COPY cds_hooks/ cds_hooks/
COPY service/ service/

# Every dependency at the version and sha256 of requirements/runtime.lock (regenerated from
# pyproject.toml by `bash .ci/lock`): builds on different days ship the same releases, and a
# file whose hash differs is refused. Every dependency ships manylinux wheels for CPython 3.11,
# so the builder needs no compiler. The project itself is built with --no-deps: nothing
# outside the lock can slip in through its metadata.
RUN python -m pip wheel --require-hashes --wheel-dir /wheels -r requirements/runtime.lock \
    && python -m pip wheel --no-deps --wheel-dir /wheels/project .

# ---------------------------------------------------------------------------------------------
# Runtime: the wheels, the FHIR profiles, and nothing able to build or fetch code.
# ---------------------------------------------------------------------------------------------
FROM python:3.11.15-slim-bookworm@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3 AS runtime

# Set by the release build (also --build-arg SOURCE=<repository URL>); the defaults only say that
# a local build did not record them.
ARG VERSION=0.0.0+unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown

LABEL org.opencontainers.image.title="mscc-cds" \
      org.opencontainers.image.description="CDS Hooks service that screens lung cancer patients for metastatic spinal cord compression" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.15-slim-bookworm" \
      org.opencontainers.image.base.digest="sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3"

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only at run time, so the interpreter must
# never try to write .pyc files; they are compiled once below instead.
# HOME=/tmp: libraries that cache under $HOME then write to the only writable path.
# MSCC_STORE__URL: the default SQLite file lives on the /data volume, never in the image.
# MSCC_STORE__SPOOL_DIR: audit records are written here before each hook answers; on /data, so
# they survive the container (docs/audit.md), whichever database MSCC_STORE__URL names.
# MSCC_METRICS_PORT: Prometheus scrapes its own port, never the EHR-facing one.
# MSCC_WORKERS=0: one worker process per CPU the container may use (its CPU limit, read from
# the cgroup); Kubernetes sets 2 to match the pod's limit (deploy/k8s/base).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MSCC_HOST=0.0.0.0 \
    MSCC_PORT=8080 \
    MSCC_METRICS_PORT=9464 \
    MSCC_WORKERS=0 \
    MSCC_PROFILES_DIR=/app/profiles \
    MSCC_STORE__URL=sqlite+aiosqlite:////data/mscc-cds.sqlite3 \
    MSCC_STORE__SPOOL_DIR=/data/audit-spool

# One layer: install the wheels offline (--no-index: nothing is fetched at this point; pip
# compiles their bytecode as it installs), compile the standard library too (the official image
# ships it without .pyc files, and a read-only filesystem means they could never be cached),
# remove the packaging tools, then create the unprivileged user and its data directory.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements/runtime.lock,target=/tmp/runtime.lock \
    python -m pip uninstall --yes setuptools wheel \
    && python -m pip install --no-index --find-links=/wheels --require-hashes --compile -r /tmp/runtime.lock \
    && python -m pip install --no-index --no-deps --compile /wheels/project/*.whl \
    && python -m compileall -q -j 0 -x '/site-packages/' \
       "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
    && python -m pip uninstall --yes pip \
    && groupadd --system --gid 10001 mscc \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin mscc \
    && mkdir -p /data \
    && chown 10001:10001 /data \
    && chmod 0750 /data

WORKDIR /app

# Profiles stay owned by root: the service reads them and must not be able to change them.
COPY profiles/ /app/profiles/

VOLUME ["/data"]

USER 10001:10001

EXPOSE 8080 9464

# Liveness only (process up): readiness is /readyz, used by compose and Kubernetes. The slim image
# has no curl or wget, so the check uses the standard library; ProxyHandler({}) keeps an inherited
# HTTP_PROXY from routing a loopback request through the hospital proxy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:' + os.environ.get('MSCC_PORT', '8080') + '/livez', timeout=4)"]

# CMD (not ENTRYPOINT) so one-shot containers from the same image can run `mscc-cds migrate` or
# `mscc-cds seed` as their command.
CMD ["python", "-m", "service"]
