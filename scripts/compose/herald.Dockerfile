# The same image as ../../Dockerfile, from binaries built beforehand (the build context
# is a folder holding pipeline, bot, loadtest, herald-signer and herald-verify, staged by
# scripts/compose-test): no Rust image is needed, so it builds without a registry.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY pipeline bot loadtest herald-signer herald-verify /usr/local/bin/
WORKDIR /var/lib/herald
USER 65534:65534
