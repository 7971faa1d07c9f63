# Prometheus from Debian (the package the alert rules' tests use), with Herald's scrape
# configuration and alert rules baked in (prometheus.yml, alerts.yml beside this file).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl prometheus >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY prometheus.yml alerts.yml /etc/prometheus/
VOLUME /prometheus
ENTRYPOINT ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
