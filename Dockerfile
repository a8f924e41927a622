# syntax=docker/dockerfile:1
# mps-archiver: a static binary on distroless/static (CA certificates,
# /etc/passwd with the nonroot user, no shell). Time-zone data is embedded in
# the binary, so CRON_TZ schedules work on any base image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t mps-archiver .

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The exact build command; .ci/run and the image test run this line as is.
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mps-archiver ./cmd/mps-archiver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mps-archiver /usr/local/bin/mps-archiver
# distroless's nonroot user, by number so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/mps-archiver"]
CMD ["serve"]
