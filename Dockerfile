# The manager image: a static binary on distroless, non-root, without a shell.
# Build with `make docker-build IMG=REGISTRY/marketplace-operator:TAG` (needs a Docker engine).
FROM golang:1.26 AS build
# Set by BuildKit (docker buildx --platform); plain builds target linux on the builder's arch.
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so source changes reuse the downloaded dependencies.
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/manager/ cmd/manager/
COPY controllers/ controllers/
COPY internal/ internal/
COPY koogallery/ koogallery/
COPY render/ render/
COPY webhook/ webhook/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
