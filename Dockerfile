# Roster's container image: a release build of `roster`, run as an unprivileged
# user with its SQLite data on the /data volume.
#
#   podman build --format docker -t roster .   (or: docker build -t roster .)
#   podman run -d -p 8080:8080 -v roster-data:/data \
#       -e ROSTER_SECRET_KEY="$(openssl rand -base64 32)" roster
#
# Both images are build arguments, for a mirror or a registry of your own:
#   --build-arg BUILDER=registry.example/rust:1-slim-bookworm
#   --build-arg BASE=registry.example/debian:bookworm-slim
# docs/deployment.md covers volumes, PostgreSQL and the health check.

ARG BUILDER=docker.io/library/rust:1-slim-bookworm
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER} AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate downloads and the build between image
# builds; the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p roster \
    && install -m 0755 target/release/roster /usr/local/bin/roster

FROM ${BASE}
# ca-certificates: webhook receivers and PostgreSQL over TLS are verified
# against the system's roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && groupadd --system --gid 10001 roster \
    && useradd --system --uid 10001 --gid roster --home-dir /data --shell /usr/sbin/nologin roster \
    && mkdir -p /data /etc/roster \
    && chown roster:roster /data
COPY --from=build /usr/local/bin/roster /usr/local/bin/roster
COPY packaging/container.toml /etc/roster/roster.toml
ENV ROSTER_CONFIG=/etc/roster/roster.toml
USER roster:roster
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# `roster healthcheck` asks the running server's /health/ready over loopback;
# the image needs no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["roster", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["roster"]
CMD ["serve"]
