// Package containerimage builds regscribe's container image without a
// container engine, the way Go projects do: the static binary, cross-compiled
// with `go build`, in one layer on an empty base, one image per platform in
// one OCI image index.
//
// It owns what the image is: its one layer (the binary, an empty /data owned
// by the image's user, /tmp), its user (65532), entrypoint, environment and
// OCI labels. It does not push: callers write the index where they like
// (deploy/image pushes it with go-containerregistry's remote package).
package containerimage
