package thumb_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/thumb"
)

// fixture is a registry (go-containerregistry's, in process) that counts the
// blob fetches it answers, and a cache in front of it.
type fixture struct {
	host  string
	blobs atomic.Int64
	reqs  atomic.Int64
	cache *thumb.Cache
	dir   string
}

func newFixture(t testing.TB, maxBytes int64) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") == "regscribe" {
			f.reqs.Add(1)
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
				f.blobs.Add(1)
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	client, err := registry.New([]registry.Endpoint{{Host: f.host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	f.cache, err = thumb.New(thumb.Options{Dir: f.dir, MaxBytes: maxBytes, Registry: client, MaxBlobBytes: 8 << 20})
	require.NoError(t, err)
	return f
}

// push pushes one artifact whose layers are files (as `oras push` does) and
// returns the photo of its first layer.
func (f *fixture) push(t testing.TB, repoName string, files ...stacktest.File) thumb.Photo {
	t.Helper()
	ctx := context.Background()
	repo, err := remote.NewRepository(f.host + "/" + repoName)
	require.NoError(t, err)
	repo.PlainHTTP = true
	var layers []ocispec.Descriptor
	for _, file := range files {
		d := content.NewDescriptorFromBytes(file.MediaType, file.Data)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: file.Name}
		require.NoError(t, repo.Push(ctx, d, bytes.NewReader(file.Data)))
		layers = append(layers, d)
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{Layers: layers})
	require.NoError(t, err)
	return thumb.Photo{Registry: f.host, Repository: repoName, Manifest: desc.Digest.String(), Layer: layers[0].Digest.String()}
}

func TestThumbnailIsMadeOnceAndServedFromDisk(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	src := stacktest.JPEG(t, 1600, 1200, 1)
	p := f.push(t, "photos/lake", stacktest.File{Name: "lake.jpg", MediaType: "image/jpeg", Data: src})
	f.reqs.Store(0)

	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := f.cache.Get(ctx, p, thumb.Grid)
			require.NoError(t, err)
			got[i] = b
		}()
	}
	wg.Wait()
	require.Equal(t, int64(1), f.blobs.Load(), "eight requests at once fetch the blob once")
	for _, b := range got[1:] {
		require.Equal(t, got[0], b)
	}
	img, err := jpeg.Decode(bytes.NewReader(got[0]))
	require.NoError(t, err)
	require.Equal(t, thumb.Grid, img.Bounds().Dx())
	require.Equal(t, thumb.Grid*3/4, img.Bounds().Dy())

	reqs := f.reqs.Load()
	again, err := f.cache.Get(ctx, p, thumb.Grid)
	require.NoError(t, err)
	require.Equal(t, got[0], again)
	require.Equal(t, reqs, f.reqs.Load(), "a cached thumbnail asks the registry nothing")

	// A new cache on the same directory (a restart) finds it on disk.
	client, err := registry.New([]registry.Endpoint{{Host: f.host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	restarted, err := thumb.New(thumb.Options{Dir: f.dir, Registry: client})
	require.NoError(t, err)
	require.Equal(t, int64(len(got[0])), restarted.Size())
	b, err := restarted.Get(ctx, p, thumb.Grid)
	require.NoError(t, err)
	require.Equal(t, got[0], b)
	require.Equal(t, reqs, f.reqs.Load())
}

func TestRegistryBytesAreNeverServedAsTheyAre(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>`)
	html := []byte(`<!doctype html><html><body><script>fetch("/jobs")</script></body></html>`)
	for name, data := range map[string][]byte{"svg.png": svg, "html.jpg": html, "truncated.jpg": stacktest.JPEG(t, 64, 64, 2)[:200]} {
		p := f.push(t, "photos/evil", stacktest.File{Name: name, MediaType: "image/png", Data: data})
		_, err := f.cache.Get(ctx, p, thumb.Grid)
		require.ErrorIs(t, err, thumb.ErrNotPhoto, name)
	}
	// A small JPEG that needs no resizing is still decoded and re-encoded.
	small := stacktest.JPEG(t, 120, 90, 3)
	p := f.push(t, "photos/small", stacktest.File{Name: "small.jpg", MediaType: "image/jpeg", Data: small})
	b, err := f.cache.Get(ctx, p, thumb.Preview)
	require.NoError(t, err)
	require.NotEqual(t, small, b)
	img, err := jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, 120, img.Bounds().Dx())
	// So is a PNG: the answer is JPEG.
	p = f.push(t, "photos/png", stacktest.File{Name: "p.png", MediaType: "image/png", Data: stacktest.PNG(t, 100, 100, 4)})
	b, err = f.cache.Get(ctx, p, thumb.Grid)
	require.NoError(t, err)
	_, err = jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err)
}

func TestOnlyLayersOfTheNamedManifestOfConfiguredRegistries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	a := f.push(t, "photos/a", stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 64, 5)})
	b := f.push(t, "photos/b", stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 64, 6)})
	f.blobs.Store(0)

	cases := map[string]struct {
		photo thumb.Photo
		size  int
		want  error
	}{
		"a layer of another manifest":        {thumb.Photo{Registry: f.host, Repository: "photos/a", Manifest: a.Manifest, Layer: b.Layer}, thumb.Grid, thumb.ErrNotFound},
		"the manifest in another repository": {thumb.Photo{Registry: f.host, Repository: "photos/b", Manifest: a.Manifest, Layer: a.Layer}, thumb.Grid, thumb.ErrNotFound},
		"a digest that is a path":            {thumb.Photo{Registry: f.host, Repository: "photos/a", Manifest: a.Manifest, Layer: "sha256:../../etc/passwd"}, thumb.Grid, thumb.ErrNotFound},
	}
	for name, c := range cases {
		_, err := f.cache.Get(ctx, c.photo, c.size)
		require.ErrorIs(t, err, c.want, name)
	}
	_, err := f.cache.Get(ctx, thumb.Photo{Registry: "example.com", Repository: "photos/a", Manifest: a.Manifest, Layer: a.Layer}, thumb.Grid)
	require.ErrorContains(t, err, "not configured")
	_, err = f.cache.Get(ctx, a, 333)
	require.ErrorContains(t, err, "size 333")
	require.Zero(t, f.blobs.Load(), "no blob was fetched for a photo that is not one")
}

func TestCacheStaysWithinItsBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 0)
	ctx := context.Background()
	var photos []thumb.Photo
	var sizes []int
	for i := range 6 {
		p := f.push(t, "photos/many", stacktest.File{Name: "x.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 600, 400, uint64(10+i))})
		b, err := f.cache.Get(ctx, p, thumb.Grid)
		require.NoError(t, err)
		photos = append(photos, p)
		sizes = append(sizes, len(b))
	}
	// A cache with room for about three of them keeps the newest.
	limit := int64(sizes[3] + sizes[4] + sizes[5])
	client, err := registry.New([]registry.Endpoint{{Host: f.host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	small, err := thumb.New(thumb.Options{Dir: f.dir, MaxBytes: limit, Registry: client})
	require.NoError(t, err)
	require.LessOrEqual(t, small.Size(), limit)
	files, err := os.ReadDir(filepath.Join(f.dir, "480"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	for range 3 {
		for _, p := range photos {
			_, err := small.Get(ctx, p, thumb.Grid)
			require.NoError(t, err)
			require.LessOrEqual(t, small.Size(), limit)
		}
	}
}

func TestMakeRefusesWhatIsNoImage(t *testing.T) {
	t.Parallel()
	_, err := thumb.Make(context.Background(), []byte("GIF89a not really"), thumb.Grid)
	require.True(t, errors.Is(err, thumb.ErrNotPhoto))
}

// A HEIC decode stops when the thumbnail's context ends, and the photo is
// not taken for one that cannot be shown.
func TestMakeStopsWithItsContext(t *testing.T) {
	t.Parallel()
	heic, err := os.ReadFile("../imageprep/testdata/photo12.heic")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = thumb.Make(ctx, heic, thumb.Grid)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, errors.Is(err, thumb.ErrNotPhoto))
}

// BenchmarkCachedGet is a thumbnail read from the cache (made once before
// the timer starts).
func BenchmarkCachedGet(b *testing.B) {
	f := newFixture(b, 0)
	p := f.push(b, "photos/bench", stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(b, 4000, 3000, 9)})
	ctx := context.Background()
	_, err := f.cache.Get(ctx, p, thumb.Grid)
	require.NoError(b, err)
	for b.Loop() {
		if _, err := f.cache.Get(ctx, p, thumb.Grid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMake is making one grid thumbnail of a 12 MP JPEG.
func BenchmarkMake(b *testing.B) {
	src := stacktest.JPEG(b, 4000, 3000, 9)
	for b.Loop() {
		if _, err := thumb.Make(context.Background(), src, thumb.Grid); err != nil {
			b.Fatal(err)
		}
	}
}
