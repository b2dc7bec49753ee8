# concord's container image: a static binary on distroless, running as a non-root user.
#   docker build -t concord .
#   docker run --rm concord --help
# deploy/deploy_test.go runs this file's `go build` line with the same flags.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/concord ./cmd/concord

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/concord /concord
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/concord"]
