# syntax=docker/dockerfile:1
# The Baton worker image: multi-stage, non-root, dependencies from the lock file.
#
#   docker build -t baton .             # or: podman build / buildah build
#   docker run --rm baton --help
#
# BASE is a Debian bookworm image with Python 3.11. The default is the official slim
# image, pinned by tag; pin it by digest in your registry's mirror. Without a registry,
# build one from Debian's packages (tests/deploy/test_image.py does exactly this):
#   mmdebstrap --variant=apt --include=python3,python3-venv,ca-certificates \
#     --format=tar bookworm base.tar && podman import base.tar localhost/bookworm-python
#   buildah build --build-arg BASE=localhost/bookworm-python -t baton .
ARG BASE=docker.io/library/python:3.11.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/baton
# the dependencies first, from the lock alone: this layer is reused until the lock moves
COPY deploy/requirements.runtime.lock /tmp/requirements.lock
RUN /opt/baton/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY agents /src/agents
COPY pipeline /src/pipeline
COPY schemas /src/schemas
RUN /opt/baton/bin/pip install --no-deps /src && /opt/baton/bin/baton --help >/dev/null

FROM ${BASE}
RUN (getent group baton || groupadd --system --gid 10001 baton) \
    && useradd --system --uid 10001 --gid baton --home-dir /var/lib/baton --create-home baton
COPY --from=build /opt/baton /opt/baton
ENV PATH=/opt/baton/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BATON_WEB_HOST=0.0.0.0 \
    BATON_WEB_PORT=6066 \
    BATON_DATA_DIR=/var/lib/baton
USER 10001:10001
WORKDIR /var/lib/baton
VOLUME ["/var/lib/baton"]
EXPOSE 6066
# liveness: /healthz answers while the event loop runs (readiness is /readyz)
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=2)"]
ENTRYPOINT ["baton"]
CMD ["worker"]
