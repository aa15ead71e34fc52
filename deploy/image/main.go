// Command image builds regscribe's container image without a container
// engine and pushes it: one OCI image index with an image for linux/amd64 and
// linux/arm64, each the static binary alone on an empty base (see
// internal/containerimage). From the repository root:
//
//	go run ./deploy/image localhost:5000/regscribe:dev
//
// It prints the pushed index by digest. Credentials come from the Docker
// config (`oras login`, `docker login`); localhost, loopback and private
// addresses are spoken to over plain HTTP, as go-containerregistry does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/containerimage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	platforms := fs.String("platform", strings.Join(containerimage.DefaultPlatforms, ","), "comma-separated platforms of the index")
	version := fs.String("version", "", "version the binary prints and the image's label (default: git describe --tags --always --dirty)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./deploy/image [-platform linux/amd64,linux/arm64] [-version v1.2.3] REGISTRY/REPOSITORY[:TAG]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one reference to push to, got %d arguments", fs.NArg())
	}
	ref, err := name.ParseReference(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("reference %q: %w", fs.Arg(0), err)
	}
	idx, err := containerimage.Build(ctx, containerimage.Options{
		Platforms: strings.Split(*platforms, ","),
		Version:   *version,
		Log:       stderr,
	})
	if err != nil {
		return err
	}
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return fmt.Errorf("registry credentials: %w", err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain{ctx, store})); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ref.Context().Digest(digest.String()).String())
	return nil
}

// keychain hands go-containerregistry the credentials `oras login` stored, as
// regscribe's workers read them (oras-go's Docker config store).
type keychain struct {
	ctx   context.Context
	store credentials.Store
}

func (k keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	c, err := k.store.Get(k.ctx, r.RegistryStr())
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", r.RegistryStr(), err)
	}
	if c == auth.EmptyCredential {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: c.Username, Password: c.Password, IdentityToken: c.RefreshToken, RegistryToken: c.AccessToken,
	}), nil
}
