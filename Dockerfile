# syntax=docker/dockerfile:1
# Build: docker build -t pushgate .
# Run with the built-in simulator: docker run -p 8080:8080 -p 8090:8090 pushgate
# (the simulator listens on 0.0.0.0:8090 in the container and tells browsers
# to open http://localhost:8090; override with PUSHGATE_SIM_PUBLIC_URL).
# Beyond loopback the simulator's control API (/sim/...) is off: to drive it
# from outside, give it a token and send it as Authorization: Bearer,
#   docker run -e PUSHGATE_SIM_CONTROL_TOKEN="$(openssl rand -hex 32)" ...
# The flow pages need no token: each onboarding URL carries its own key.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pushgate ./cmd/pushgate \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/pushgate-sim ./cmd/pushgate-sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pushgate /out/pushgate-sim /usr/local/bin/
USER nonroot:nonroot
ENV PUSHGATE_ADDR=:8080 \
    PUSHGATE_SIM_ADDR=0.0.0.0:8090 \
    PUSHGATE_SIM_PUBLIC_URL=http://localhost:8090
EXPOSE 8080 8090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/pushgate", "-healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/pushgate"]
