# syntax=docker/dockerfile:1
# hl: the CLI and the bot daemon (hl bot serve) used by platform/hl-bot.
# Build: docker build -t hl .   (module downloads happen in the builder stage)

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/hl ./cmd/hl

# distroless/static: CA certificates and tzdata (the schedule's timezone),
# no shell, runs as nonroot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hl /usr/local/bin/hl
USER nonroot:nonroot
WORKDIR /work
EXPOSE 8080
# The flock(2) lock file lives in /tmp; mount an emptyDir there.
ENTRYPOINT ["/usr/local/bin/hl"]
CMD ["bot", "serve", "--listen", ":8080", "--log-format", "json", "--config", "/config/hl.yaml", "--lock-file", "/tmp/hl-bot.lock"]
