# The govbus image: one image for the gateway, the consumers, the outbox relay and every other `govbus` command.
#
#   docker build -t govbus:local .
#   docker run --rm govbus:local --help
#
# Stage 1 builds the project, with its C accelerator (schemas/_avro_fast.c, built by setup.py when
# `pip install .` runs), into a virtual environment; stage 2 is the slim runtime with only that environment.
# Both stages use the same Python image, so the environment's interpreter path is valid in both.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# .dockerignore keeps out the local .venv, .git, caches, tests and any locally built .so.
COPY . .
RUN /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .
# The extension is optional in setup.py (a failed compile only warns): fail the build here instead.
# Run from / so that the installed package is imported, not the source tree.
WORKDIR /
RUN /opt/venv/bin/python -c "import sys; from schemas import fast_decoder, fast_encoder; \
sys.exit(0 if fast_encoder.ACCELERATED and fast_decoder.ACCELERATED else 'the C accelerator was not built')"

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GOVBUS_HOME=/var/lib/govbus \
    GOVBUS_LOG_FORMAT=json \
    GOVBUS_REQUIRE_ACCELERATION=1
RUN groupadd --system --gid 10001 govbus \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/govbus --no-create-home \
        --shell /usr/sbin/nologin govbus \
    && mkdir -p /var/lib/govbus \
    && chown 10001:10001 /var/lib/govbus
COPY --from=build /opt/venv /opt/venv
# The same check as the build stage's, on the copied environment: a broken C build is noticed here too.
RUN if [ "$GOVBUS_REQUIRE_ACCELERATION" = 1 ]; then python -c "import sys; \
from schemas import fast_decoder, fast_encoder; \
sys.exit(0 if fast_encoder.ACCELERATED and fast_decoder.ACCELERATED else 'the C accelerator is missing')"; fi
WORKDIR /var/lib/govbus
VOLUME ["/var/lib/govbus"]
# Numeric, so that Kubernetes' runAsNonRoot can verify it; it is the govbus user created above.
USER 10001:10001
# The gateway's port (`govbus gateway --port`, default 8080).
EXPOSE 8080
ENTRYPOINT ["govbus"]
# The gateway listens on loopback unless told otherwise; in a container it must take connections from outside.
# On a non-loopback address it needs an identities file in GOVBUS_HOME (`govbus org add`).
CMD ["gateway", "--host", "0.0.0.0"]
