package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/fault"
)

// MaxManifestBytes caps manifest fetches (the OCI spec asks registries to
// accept at least 4 MiB manifests).
const MaxManifestBytes = 4 << 20

// Options configure [New].
type Options struct {
	// Credentials supplies registry credentials. If nil, the Docker config
	// file is used (what `oras login` and `docker login` write).
	Credentials credentials.Store
	// UserAgent is sent with every request. If empty, "regscribe" is used.
	UserAgent string
	// HTTPClient carries the requests. If nil, oras-go's retrying transport
	// (5xx and 429 retried a few times) on a connection pool of its own.
	HTTPClient *http.Client
}

// Client reaches the configured registries. It keeps one
// *remote.Repository per repository so that oras-go's per-repository state
// (referrers capability, fallback index merging) is shared within the process.
type Client struct {
	endpoints map[string]config.Registry
	client    *auth.Client

	mu    sync.Mutex
	repos map[string]*remote.Repository
}

// New returns a Client that may contact only the given registries.
func New(endpoints []config.Registry, opts Options) (*Client, error) {
	store := opts.Credentials
	if store == nil {
		s, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("registry credentials: %w", err)
		}
		store = s
	}
	hc := opts.HTTPClient
	if hc == nil {
		// oras-go's retrying client, on a transport of its own: the default
		// one keeps two idle connections per host, and code in the same
		// process may close its idle connections (the embedded registry
		// does after every notification).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: retry.NewTransport(t)}
	}
	ua := opts.UserAgent
	if ua == "" {
		ua = "regscribe"
	}
	c := &Client{
		endpoints: make(map[string]config.Registry, len(endpoints)),
		client: &auth.Client{
			Client:     hc,
			Cache:      auth.NewCache(),
			Credential: credentials.Credential(store),
			Header:     http.Header{"User-Agent": []string{ua}},
		},
		repos: map[string]*remote.Repository{},
	}
	for _, e := range endpoints {
		e.Host = canonicalHost(e.Host)
		c.endpoints[e.Host] = e
	}
	return c, nil
}

// Allowed reports whether host is a configured registry.
func (c *Client) Allowed(host string) bool {
	_, ok := c.endpoints[canonicalHost(host)]
	return ok
}

// Repository returns the repository handle for host/name. A host that is not
// configured is a permanent error: nobody can make a worker connect elsewhere.
func (c *Client) Repository(host, name string) (*remote.Repository, error) {
	host = canonicalHost(host)
	e, ok := c.endpoints[host]
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("registry %q is not configured (REGSCRIBE_REGISTRIES)", host))
	}
	key := host + "/" + name
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.repos[key]; ok {
		return r, nil
	}
	r, err := remote.NewRepository(key)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("repository %s: %w", key, err))
	}
	r.PlainHTTP = e.PlainHTTP
	r.Client = c.client
	c.repos[key] = r
	return r, nil
}

// Manifest is a fetched manifest: its descriptor and its bytes as stored.
type Manifest struct {
	Descriptor ocispec.Descriptor
	Raw        []byte
}

// FetchManifest fetches the manifest at reference (a digest or a tag).
func (c *Client) FetchManifest(ctx context.Context, repo *remote.Repository, reference string) (Manifest, error) {
	desc, raw, err := oras.FetchBytes(ctx, repo.Manifests(), reference, oras.FetchBytesOptions{MaxBytes: MaxManifestBytes})
	if err != nil {
		return Manifest{}, Classify(fmt.Errorf("fetch manifest %s@%s: %w", repo.Reference, reference, err))
	}
	return Manifest{Descriptor: desc, Raw: raw}, nil
}

// FetchBlob fetches a blob whole, refusing it before download when its
// descriptor says it is larger than maxBytes, and verifying size and digest.
func (c *Client) FetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, maxBytes int64) ([]byte, error) {
	if desc.Size > maxBytes {
		return nil, fault.Permanent(fmt.Errorf("blob %s is %d bytes, over the %d byte limit (REGSCRIBE_MAX_BLOB_BYTES)", desc.Digest, desc.Size, maxBytes))
	}
	if desc.Size < 0 {
		return nil, fault.Permanent(fmt.Errorf("blob %s has a negative size", desc.Digest))
	}
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		return nil, Classify(fmt.Errorf("fetch blob %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, Classify(fmt.Errorf("read blob %s@%s: %w", repo.Reference, desc.Digest, err))
	}
	return b, nil
}

// Resolve returns the descriptor a tag points at now.
func (c *Client) Resolve(ctx context.Context, repo *remote.Repository, tag string) (ocispec.Descriptor, error) {
	d, err := repo.Resolve(ctx, tag)
	if err != nil {
		return ocispec.Descriptor{}, Classify(fmt.Errorf("resolve %s:%s: %w", repo.Reference, tag, err))
	}
	return d, nil
}

// Classify marks a registry error with its fault kind: a manifest that is
// gone is a skip; auth failures, content that fails verification and other
// 4xx are permanent; everything else (5xx, 429, network) is retryable.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var resp *errcode.ErrorResponse
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, errdef.ErrNotFound):
		return fault.Skip("%v", err)
	case errors.Is(err, errdef.ErrSizeExceedsLimit),
		errors.Is(err, content.ErrMismatchedDigest),
		errors.Is(err, content.ErrTrailingData),
		errors.Is(err, content.ErrInvalidDescriptorSize):
		return fault.Permanent(err)
	case errors.As(err, &resp):
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return fault.Skip("%v", err)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
			return fault.Retry(err)
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return fault.Permanent(fmt.Errorf("%w (check the credentials `oras login` stored for this registry)", err))
		default:
			return fault.Permanent(err)
		}
	}
	return fault.Retry(err)
}

// Ping checks that every configured registry answers its API root.
func (c *Client) Ping(ctx context.Context) error {
	var errs []error
	for host, e := range c.endpoints {
		reg, err := remote.NewRegistry(host)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		reg.PlainHTTP = e.PlainHTTP
		reg.Client = c.client
		if err := reg.Ping(ctx); err != nil {
			errs = append(errs, fmt.Errorf("registry %s: %w", host, err))
		}
	}
	return errors.Join(errs...)
}

// canonicalHost lower-cases host[:port] and spells every loopback name
// (localhost, 127.0.0.1, ::1) as 127.0.0.1: `oras push localhost:5000/…`
// and a registry configured as 127.0.0.1:5000 are one registry on this
// machine. No other host is ever rewritten.
func canonicalHost(hostport string) string {
	hostport = strings.ToLower(hostport)
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return hostport
	}
	if port == "" {
		return "127.0.0.1"
	}
	return net.JoinHostPort("127.0.0.1", port)
}
