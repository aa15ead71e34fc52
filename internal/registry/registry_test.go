package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/registry"
)

const manifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example",` +
	`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
	`"layers":[{"mediaType":"image/jpeg","digest":"sha256:aa","size":10,"annotations":{"org.opencontainers.image.title":"a.jpg"}},` +
	`{"mediaType":"image/png","digest":"sha256:bb","size":20}],` +
	`"annotations":{"z.vendor":"keep","io.regscribe.describe":"true"},"x-unknown":{"kept":[1,2,3]}}`

func TestAnnotate(t *testing.T) {
	t.Parallel()
	out, err := registry.Annotate([]byte(manifest), registry.Edit{
		Manifest: map[string]string{registry.AnnotationModel: "ollama/m", registry.AnnotationDescription: "A \"quoted\" pineapple."},
		Layers:   map[int]map[string]string{1: {registry.AnnotationDescription: "Dunes."}},
		Remove:   []string{"io.regscribe.describe"},
	})
	require.NoError(t, err)
	// Untouched fields keep their order and bytes; new keys come sorted.
	require.Equal(t, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},`+
		`"layers":[{"mediaType":"image/jpeg","digest":"sha256:aa","size":10,"annotations":{"org.opencontainers.image.title":"a.jpg"}},`+
		`{"mediaType":"image/png","digest":"sha256:bb","size":20,"annotations":{"io.regscribe.description":"Dunes."}}],`+
		`"annotations":{"z.vendor":"keep","io.regscribe.description":"A \"quoted\" pineapple.","io.regscribe.model":"ollama/m"},"x-unknown":{"kept":[1,2,3]}}`, string(out))

	again, err := registry.Annotate([]byte(manifest), registry.Edit{
		Manifest: map[string]string{registry.AnnotationDescription: "A \"quoted\" pineapple.", registry.AnnotationModel: "ollama/m"},
		Layers:   map[int]map[string]string{1: {registry.AnnotationDescription: "Dunes."}},
		Remove:   []string{"io.regscribe.describe"},
	})
	require.NoError(t, err)
	require.Equal(t, out, again, "the same edit gives the same bytes")

	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`
	out, err = registry.Annotate([]byte(idx), registry.Edit{Manifests: map[int]ocispec.Descriptor{0: content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, []byte("{}"))}})
	require.NoError(t, err)
	require.Contains(t, string(out), `"platform":{"os":"linux","architecture":"amd64"}`)
	require.Contains(t, string(out), `"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2`)

	for _, bad := range []string{`[]`, `{`, `{"layers":{}}`, `{} {}`} {
		_, err := registry.Annotate([]byte(bad), registry.Edit{Layers: map[int]map[string]string{0: {"a": "b"}}})
		require.Error(t, err, bad)
	}
	_, err = registry.Annotate([]byte(manifest), registry.Edit{Layers: map[int]map[string]string{5: {"a": "b"}}})
	require.Error(t, err)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	status := func(code int) error {
		return fmt.Errorf("fetch: %w", &errcode.ErrorResponse{Method: "GET", StatusCode: code})
	}
	cases := []struct {
		err  error
		kind fault.Kind
	}{
		{status(http.StatusServiceUnavailable), fault.KindRetry},
		{status(http.StatusTooManyRequests), fault.KindRetry},
		{status(http.StatusUnauthorized), fault.KindPermanent},
		{status(http.StatusForbidden), fault.KindPermanent},
		{status(http.StatusBadRequest), fault.KindPermanent},
		{status(http.StatusNotFound), fault.KindSkip},
		{fmt.Errorf("x: %w", errdef.ErrNotFound), fault.KindSkip},
		{fmt.Errorf("x: %w", content.ErrMismatchedDigest), fault.KindPermanent},
		{fmt.Errorf("x: %w", errdef.ErrSizeExceedsLimit), fault.KindPermanent},
		{status(http.StatusRequestTimeout), fault.KindRetry},
		{errors.New("dial tcp: connection refused"), fault.KindRetry},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), fault.KindRetry},
		{errors.New("something nobody foresaw"), fault.KindRetry},
		{fmt.Errorf("GET x: %w", auth.ErrBasicCredentialNotFound), fault.KindPermanent},
	}
	for _, tc := range cases {
		require.True(t, fault.Is(registry.Classify(tc.err), tc.kind), "%v: want %v", tc.err, tc.kind)
	}
	require.Contains(t, registry.Classify(status(http.StatusUnauthorized)).Error(), "oras login")
}

// A job naming localhost reaches a registry configured as 127.0.0.1 (one
// machine); no other name is rewritten.
func TestLoopbackNamesAreOneRegistry(t *testing.T) {
	t.Parallel()
	c, err := registry.New([]registry.Endpoint{{Host: "127.0.0.1:5000", PlainHTTP: true}, {Host: "Registry.Example.com"}},
		registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	for _, h := range []string{"127.0.0.1:5000", "localhost:5000", "LOCALHOST:5000", "[::1]:5000", "registry.example.com"} {
		require.True(t, c.Allowed(h), h)
		repo, err := c.Repository(h, "photos/x")
		require.NoError(t, err, h)
		require.Contains(t, []string{"127.0.0.1:5000", "registry.example.com"}, repo.Reference.Registry, "connects by the configured name (host names are lower-cased)")
	}
	for _, h := range []string{"localhost:5001", "127.0.0.2:5001", "registry.example.com:443", "evil.example"} {
		require.False(t, c.Allowed(h), h)
		_, err := c.Repository(h, "photos/x")
		require.True(t, fault.Is(err, fault.KindPermanent), h)
	}
}

// The handles a Client keeps are bounded: names a web form or an event
// makes up are forgotten, least recently used first, and a repository in
// use keeps its handle (and oras-go's state in it).
func TestRepositoryHandlesAreBounded(t *testing.T) {
	t.Parallel()
	c, err := registry.New([]registry.Endpoint{{Host: "127.0.0.1:5000", PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	handle := func(name string) *remote.Repository {
		r, err := c.Repository("127.0.0.1:5000", name)
		require.NoError(t, err)
		return r
	}
	first, kept := handle("photos/first"), handle("photos/kept")
	for i := range 5000 {
		handle(fmt.Sprintf("made/up-%d", i))
		if i%500 == 0 {
			require.Same(t, kept, handle("photos/kept"))
		}
	}
	require.Same(t, kept, handle("photos/kept"), "in use: the same handle")
	require.NotSame(t, first, handle("photos/first"), "unused since thousands of others: forgotten")
}
