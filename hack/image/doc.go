// Command image builds the manager's OCI image without a container engine, and checks one.
//
//	image build --out DIR --archive FILE --binary linux/amd64=PATH --binary linux/arm64=PATH ...
//	image check --layout DIR --dockerfile Dockerfile --platform linux/amd64 --platform linux/arm64 ...
//
// build writes a multi-platform image index as an OCI image layout (and the same layout as one
// tar file), each platform being the Dockerfile's runtime image made from scratch: the base
// layer holds what the Dockerfile's distroless base provides that the manager uses (the nonroot
// user and group 65532, the CA certificates for the KooGallery open API, name-service order,
// /tmp and the user's home), the second layer the static manager binary; the configuration
// carries the Dockerfile's USER, ENTRYPOINT and LABELs. check reads a layout back and fails
// unless every platform's image is what the Dockerfile promises and the release asks for.
// `make image` runs both; see the Makefile.
package main
