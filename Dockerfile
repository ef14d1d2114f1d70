# The manager image: a static binary on distroless, non-root, without a shell.
# Build with `make docker-build IMG=REGISTRY/marketplace-operator:TAG` (needs a Docker engine).
# `make image` builds the same image without an engine (hack/image), from scratch with the base
# files the manager uses, and checks that its user, entrypoint and labels are the ones below.
#
# Base images. The builder's tag is the Go toolchain go.mod names (the image runs with
# GOTOOLCHAIN=local, so a plain `golang:1.26` could build with an older 1.26.x than the one
# govulncheck checked). Tags can be moved by their publishers: for a release, pin both by digest,
# resolved where a registry is reachable and recorded with the release:
#   docker buildx imagetools inspect IMAGE          # "Digest:" is the multi-platform index's
#   docker build --build-arg BUILDER_IMAGE=IMAGE@sha256:DIGEST \
#                --build-arg BASE_IMAGE=IMAGE@sha256:DIGEST -t IMG .
# (IMAGE being each default below). Use the index digest, not one platform's manifest, so that
# TARGETARCH builds still resolve. The defaults stay tags: this repository's build machines reach
# no image registry to resolve or verify a digest, and a digest copied from elsewhere would pin
# an image of unknown age.
ARG BUILDER_IMAGE=golang:1.26.10
ARG BASE_IMAGE=gcr.io/distroless/static:nonroot

FROM ${BUILDER_IMAGE} AS build
# Set by BuildKit (docker buildx --platform); plain builds target linux on the builder's arch.
ARG TARGETOS
ARG TARGETARCH
# The release (the VERSION file) and the commit, stamped into the binary and the labels. No
# defaults: the build context has neither the VERSION file nor git, and an image that cannot say
# what it is should not be built. `make docker-build` passes them.
ARG VERSION
ARG REVISION
RUN test -n "$VERSION" && test -n "$REVISION" || \
    { echo "build with --build-arg VERSION=... --build-arg REVISION=... (make docker-build does)" >&2; exit 1; }
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
    go build -trimpath -ldflags "-s -w \
      -X github.com/marketplace-operator/marketplace-operator/internal/version.Version=${VERSION} \
      -X github.com/marketplace-operator/marketplace-operator/internal/version.Commit=${REVISION}" \
    -o /out/manager ./cmd/manager

FROM ${BASE_IMAGE}
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
