# syntax=docker/dockerfile:1
# jit-iam: build with the Rust toolchain, run on a small distroless image as a non-root user.

FROM rust:1.95-slim-bookworm AS build
# Build tools only, not shipped: pinning Debian's versions would break the
# build at every point release (the image's tag already fixes the release).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake perl pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep the AWS SDK's compiled crates between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin jit-iam \
 && cp target/release/jit-iam /jit-iam

FROM gcr.io/distroless/cc-debian12:nonroot
# No HEALTHCHECK: the image has no shell or HTTP client to run one; Kubernetes
# probes /healthz and /readyz itself (deploy/kubernetes/).
#checkov:skip=CKV_DOCKER_2:no shell or HTTP client in the image; the orchestrator probes /healthz
COPY --from=build /jit-iam /usr/local/bin/jit-iam
ENV JIT_IAM_LISTEN=0.0.0.0:8080 \
    JIT_IAM_LOG_FORMAT=json
EXPOSE 8080
# distroless's `nonroot`, by number so that Kubernetes can verify runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/jit-iam"]
CMD ["serve"]
