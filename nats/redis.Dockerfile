# redis-server from Debian (7.0), keeping its append-only file in /data (a volume).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/*
VOLUME /data
WORKDIR /data
ENTRYPOINT ["redis-server"]
