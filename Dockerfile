# syntax=docker/dockerfile:1
# Build for this machine:   docker build -t pushgate .
# Build both platforms:     docker buildx build --platform linux/amd64,linux/arm64 \
#                             --build-arg VERSION="$(git describe --tags --always)" \
#                             --build-arg REVISION="$(git rev-parse HEAD)" -t pushgate .
# The build stage runs on the builder's own platform and cross-compiles
# (CGO_ENABLED=0), so no emulation is needed for arm64.
#
# Run with the built-in simulator: docker run -p 8080:8080 -p 8090:8090 pushgate
# (the simulator listens on 0.0.0.0:8090 in the container and tells browsers
# to open http://localhost:8090; override with PUSHGATE_SIM_PUBLIC_URL).
# Beyond loopback the simulator's control API (/sim/...) is off: to drive it
# from outside, give it a token and send it as Authorization: Bearer,
#   docker run -e PUSHGATE_SIM_CONTROL_TOKEN="$(openssl rand -hex 32)" ...
# The flow pages need no token: each onboarding URL carries its own key.
# Production: see docs/deploy.md (Kubernetes chart, TLS, secrets from files).
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS TARGETARCH
# VERSION and REVISION name the build in pushgate -version, the startup log
# line and pushgate_build_info; empty, they read "(devel)" and "unknown".
ARG VERSION="" REVISION=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/ ./cmd/pushgate ./cmd/pushgate-sim

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION="" REVISION=""
LABEL org.opencontainers.image.title="pushgate" \
      org.opencontainers.image.description="Pushes identity-verification onboarding status to browsers over Server-Sent Events" \
      org.opencontainers.image.source="https://github.com/pushgate/pushgate" \
      org.opencontainers.image.documentation="https://github.com/pushgate/pushgate/blob/main/docs/deploy.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/pushgate /out/pushgate-sim /usr/local/bin/
# nonroot is uid and gid 65532; the root filesystem may be read-only (the
# gateway writes nothing but -relay-dir, when set).
USER nonroot:nonroot
ENV PUSHGATE_ADDR=:8080 \
    PUSHGATE_SIM_ADDR=0.0.0.0:8090 \
    PUSHGATE_SIM_PUBLIC_URL=http://localhost:8090
EXPOSE 8080 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/pushgate", "-healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/pushgate"]
