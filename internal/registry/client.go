package registry

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/regscribe/regscribe/internal/fault"
)

// MaxManifestBytes caps manifest fetches (the OCI spec asks registries to
// accept at least 4 MiB manifests).
const MaxManifestBytes = 4 << 20

// Endpoint is one registry a [Client] may contact.
type Endpoint struct {
	// Host is host[:port] as configured, e.g. "localhost:5000": requests go
	// to this name (and TLS checks it), credentials are looked up under it.
	Host string
	// PlainHTTP is true for http:// registries.
	PlainHTTP bool
	// Aliases are other host[:port] names of the same registry
	// (REGSCRIBE_REGISTRY_ALIASES): jobs and commands may name it by them,
	// requests still go to Host (see [Names]).
	Aliases []string
}

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
	// Logger receives warnings about tags (see [Client.WriteAnnotation]).
	// If nil, slog.Default().
	Logger *slog.Logger
	// Tags are the records of announced pushes per tag that decide a tag
	// found on another manifest (see [Client.WriteAnnotation]). If nil,
	// there are none.
	Tags TagRecords
	// TagWait bounds how long a write-back waits for the registry to link
	// a tag to a push it announced. If zero, DefaultTagWait.
	TagWait time.Duration
}

// Client reaches the configured registries. It keeps one
// *remote.Repository per repository so that oras-go's per-repository state
// (referrers capability, fallback index merging) is shared within the
// process: the maxRepos used last, so that names a web form or an event
// makes up cannot grow it without bound.
type Client struct {
	// names finds the configured endpoint of any name of a registry;
	// endpoints are the distinct configured ones.
	names     *Names
	endpoints []Endpoint
	client    *auth.Client
	log       *slog.Logger
	tags      TagRecords
	tagWait   time.Duration

	mu sync.Mutex
	// repos are the handles by host/name; used orders them, the one used
	// last at the front.
	repos map[string]*list.Element
	used  *list.List
	// dropsReplaced says, per registry (canonical name) seen once, whether
	// it drops the manifest a tag move left (logged the first time); a
	// registry treats every manifest alike, so it is asked once.
	dropsReplaced map[string]bool
}

// New returns a Client that may contact only the given registries. Where
// two endpoints are one registry (localhost:5000 and 127.0.0.1:5000), the
// first is kept; an alias claimed by two registries is an error ([NewNames]).
func New(endpoints []Endpoint, opts Options) (*Client, error) {
	names, err := NewNames(endpoints)
	if err != nil {
		return nil, err
	}
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
		names: names,
		client: &auth.Client{
			Client:     hc,
			Cache:      auth.NewCache(),
			Credential: loopbackCredential(credentials.Credential(store)),
			Header:     http.Header{"User-Agent": []string{ua}},
		},
		repos:         map[string]*list.Element{},
		used:          list.New(),
		dropsReplaced: map[string]bool{},
		log:           opts.Logger,
		tags:          opts.Tags,
		tagWait:       cmp.Or(opts.TagWait, DefaultTagWait),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	for _, e := range endpoints {
		kept, _ := names.Endpoint(e.Host)
		if !slices.ContainsFunc(c.endpoints, func(o Endpoint) bool { return o.Host == kept.Host }) {
			c.endpoints = append(c.endpoints, kept)
		}
	}
	return c, nil
}

// Allowed reports whether host is a configured registry (by any of its names).
func (c *Client) Allowed(host string) bool {
	_, ok := c.names.Endpoint(host)
	return ok
}

// Canonical is the name of the registry host names ([Names.Canonical]):
// what jobs, description events and the index carry.
func (c *Client) Canonical(host string) string { return c.names.Canonical(host) }

// Names are the names of the client's registries.
func (c *Client) Names() *Names { return c.names }

// Repository returns the repository handle for host/name. A host that is not
// configured is a permanent error: nobody can make a worker connect elsewhere.
// The handle reaches the registry by its configured name, whichever loopback
// spelling or alias the job used: its Reference.Registry is the canonical name.
func (c *Client) Repository(host, name string) (*remote.Repository, error) {
	e, ok := c.names.Endpoint(host)
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("registry %q is not configured (REGSCRIBE_REGISTRIES)", host))
	}
	key := e.Host + "/" + name
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.repos[key]; ok {
		c.used.MoveToFront(el)
		return el.Value.(cachedRepo).repo, nil
	}
	r, err := remote.NewRepository(key)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("repository %s: %w", key, err))
	}
	r.PlainHTTP = e.PlainHTTP
	r.Client = c.client
	c.repos[key] = c.used.PushFront(cachedRepo{key, r})
	if c.used.Len() > maxRepos {
		delete(c.repos, c.used.Remove(c.used.Back()).(cachedRepo).key)
	}
	return r, nil
}

// cachedRepo is a handle a Client keeps, by its key in Client.repos.
type cachedRepo struct {
	key  string
	repo *remote.Repository
}

// maxRepos bounds the repository handles a Client keeps: far more than the
// repositories a worker has jobs of at once.
const maxRepos = 1024

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
// gone is a skip; a registry's answer otherwise by [fault.FromStatus] (auth
// failures with a hint on credentials); missing credentials, content that
// fails verification are permanent; everything else (network, unknown) is
// retryable, within the job's attempts.
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
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fault.Permanent(fmt.Errorf("%w (%s)", err, credentialHint))
	case errors.As(err, &resp):
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fault.Skip("%v", err)
		case http.StatusUnauthorized, http.StatusForbidden:
			err = fmt.Errorf("%w (%s)", err, credentialHint)
		}
		return fault.FromStatus(resp.StatusCode, 0, err)
	}
	return fault.Retry(err)
}

// credentialHint ends the message of an auth failure.
const credentialHint = "check the credentials `oras login` stored for this registry"

// Ping checks that every configured registry answers its API root.
func (c *Client) Ping(ctx context.Context) error {
	var errs []error
	for _, e := range c.endpoints {
		host := e.Host
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

// loopbackCredential looks credentials up under the name asked for and,
// for a loopback registry, under its other spellings too: `oras login
// localhost:5000` serves a registry configured as 127.0.0.1:5000.
func loopbackCredential(get auth.CredentialFunc) auth.CredentialFunc {
	return func(ctx context.Context, hostport string) (auth.Credential, error) {
		cred, err := get(ctx, hostport)
		if err != nil || cred != auth.EmptyCredential {
			return cred, err
		}
		for _, alt := range loopbackSpellings(hostport) {
			if alt == hostport {
				continue
			}
			if cred, err = get(ctx, alt); err != nil || cred != auth.EmptyCredential {
				return cred, err
			}
		}
		return auth.EmptyCredential, nil
	}
}

// Spellings returns the names host[:port] goes by, itself first: for a
// loopback registry also its other loopback names (what a job or an event
// of `oras push localhost:5000/…` to a registry configured as
// 127.0.0.1:5000 names it by).
func Spellings(hostport string) []string {
	out := []string{hostport}
	for _, alt := range loopbackSpellings(hostport) {
		if alt != hostport {
			out = append(out, alt)
		}
	}
	return out
}

// loopbackSpellings returns the names a loopback host[:port] goes by
// (localhost, 127.0.0.1, ::1), or nil for any other host.
func loopbackSpellings(hostport string) []string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	if !isLoopback(host) {
		return nil
	}
	var out []string
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if port == "" {
			out = append(out, h)
		} else {
			out = append(out, net.JoinHostPort(h, port))
		}
	}
	return out
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
