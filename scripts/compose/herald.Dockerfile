# The same image as ../../Dockerfile, from binaries built beforehand (the build context
# is a folder holding pipeline, bot, loadtest, herald-signer and herald-verify, staged by
# scripts/compose-test): no Rust image is needed, so it builds without a registry.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY pipeline bot loadtest herald-signer herald-verify /usr/local/bin/
# owned by the user the processes run as, so a fresh named volume mounted here is
# writable under Docker too (podman hands it over by itself)
RUN mkdir -p /var/lib/herald && chown 65534:65534 /var/lib/herald
WORKDIR /var/lib/herald
USER 65534:65534
