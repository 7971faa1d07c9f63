# Herald's binaries (pipeline, bot, loadtest, herald-signer, herald-verify) in one image,
# built from source: what docker-compose.yml builds on a host with a Docker engine.
# Both images are arguments, so a host without a registry can name local ones
# (docs/operations.md, "Deploy"); scripts/compose/herald.Dockerfile is the same image
# from binaries built beforehand (the compose test's).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins \
 && mkdir /out && cp target/release/pipeline target/release/bot target/release/loadtest \
    target/release/herald-signer target/release/herald-verify /out/

FROM ${BASE_IMAGE}
# ca-certificates: the Bot API and RPC endpoints are https; curl: the healthchecks
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# the call store (HERALD_STORE_PATH) lives under /var/lib/herald, a volume
# owned by the user the processes run as, so a fresh named volume mounted here is
# writable under Docker too (podman hands it over by itself)
RUN mkdir -p /var/lib/herald && chown 65534:65534 /var/lib/herald
WORKDIR /var/lib/herald
USER 65534:65534
