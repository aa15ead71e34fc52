package thumb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/imageprep"
	"github.com/regscribe/regscribe/internal/registry"
)

// Sizes of thumbnail: the longest side in pixels.
const (
	// Grid is the size of the tiles of a repository page or search results
	// (sharp on a screen of twice the density at about 240 CSS pixels).
	Grid = 480
	// Preview is the size of a photo page's picture.
	Preview = 1280
	// Full is the size of a photo zoomed to 100% and of its download: the
	// whole picture of a 12 MP camera, re-encoded like the others.
	Full = 4096
)

// Sizes lists the sizes [Cache.Get] makes.
var Sizes = []int{Grid, Preview, Full}

// Errors of [Cache.Get].
var (
	// ErrNotPhoto: the layer does not decode as an image (an SVG, HTML or a
	// corrupt file declared as one) or is too large to decode. Show a
	// placeholder.
	ErrNotPhoto = errors.New("not a photo regscribe can show")
	// ErrNotFound: the manifest is gone, or the layer is not one of its layers.
	ErrNotFound = errors.New("no such photo")
)

// Fetcher reads manifests and blobs from the configured registries;
// *registry.Client is one. Repository must refuse a registry that is not
// configured.
type Fetcher interface {
	Repository(host, name string) (*remote.Repository, error)
	FetchManifest(ctx context.Context, repo *remote.Repository, reference string) (registry.Manifest, error)
	FetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, maxBytes int64) ([]byte, error)
}

var _ Fetcher = (*registry.Client)(nil)

// Options configure [New].
type Options struct {
	// Dir holds the cached thumbnails (created if missing). Required.
	Dir string
	// MaxBytes bounds the cache's total size on disk. If zero, 256 MiB.
	MaxBytes int64
	// Registry fetches manifests and layers. Required.
	Registry Fetcher
	// MaxBlobBytes is the largest layer fetched (REGSCRIBE_MAX_BLOB_BYTES).
	// If zero, 50 MiB.
	MaxBlobBytes int64
	// Concurrency bounds the thumbnails made at once (decoding is CPU and
	// memory heavy). If zero, 2.
	Concurrency int
	// Log receives evictions and failures. If nil, slog.Default().
	Log *slog.Logger
}

// Photo names one image layer of one manifest.
type Photo struct {
	Registry   string
	Repository string
	// Manifest is the digest of an image manifest holding Layer.
	Manifest string
	// Layer is the image layer's digest.
	Layer string
}

// Cache makes thumbnails and keeps them on disk.
type Cache struct {
	opts  Options
	group singleflight.Group
	slots chan struct{}

	mu    sync.Mutex
	files map[string]*file // by path relative to Dir
	total int64
	clock int64 // use counter: higher is more recent
	// failed remembers photos that could not be made, so a bad blob is
	// not fetched again on every page view.
	failed map[string]failure
}

type file struct {
	size int64
	used int64
}

type failure struct {
	err   error
	until time.Time
}

// New opens the cache in opts.Dir, counting what an earlier run left there.
func New(opts Options) (*Cache, error) {
	if opts.Dir == "" || opts.Registry == nil {
		return nil, errors.New("thumb: Dir and Registry are required")
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 256 << 20
	}
	if opts.MaxBlobBytes <= 0 {
		opts.MaxBlobBytes = 50 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 2
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	c := &Cache{opts: opts, slots: make(chan struct{}, opts.Concurrency), files: map[string]*file{}, failed: map[string]failure{}}
	for _, size := range Sizes {
		dir := filepath.Join(opts.Dir, strconv.Itoa(size))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("thumbnail cache: %w", err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("thumbnail cache: %w", err)
		}
		var found []struct {
			name string
			size int64
			mod  time.Time
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			if strings.HasPrefix(e.Name(), ".") {
				_ = os.Remove(filepath.Join(dir, e.Name())) // a write cut short
				continue
			}
			found = append(found, struct {
				name string
				size int64
				mod  time.Time
			}{e.Name(), info.Size(), info.ModTime()})
		}
		// Older files count as less recently used.
		slices.SortFunc(found, func(a, b struct {
			name string
			size int64
			mod  time.Time
		}) int {
			return a.mod.Compare(b.mod)
		})
		for _, f := range found {
			c.clock++
			c.files[filepath.Join(strconv.Itoa(size), f.name)] = &file{size: f.size, used: c.clock}
			c.total += f.size
		}
	}
	c.mu.Lock()
	c.evict()
	c.mu.Unlock()
	return c, nil
}

// Size reports the bytes the cache holds on disk.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// key is the cache file of layer at size, relative to Dir; the digest is
// checked first, so it never names anything outside the cache.
func key(layer string, size int) (string, error) {
	d, err := digest.Parse(layer)
	if err != nil {
		return "", fmt.Errorf("%w: layer digest %q: %v", ErrNotFound, layer, err)
	}
	if !slices.Contains(Sizes, size) {
		return "", fmt.Errorf("thumbnail size %d: want one of %v", size, Sizes)
	}
	return filepath.Join(strconv.Itoa(size), d.Algorithm().String()+"-"+d.Encoded()+".jpg"), nil
}

// Get returns the JPEG thumbnail of p whose longest side is at most size
// (one of [Sizes]), from the cache, or made from the registry's layer.
func (c *Cache) Get(ctx context.Context, p Photo, size int) ([]byte, error) {
	k, err := key(p.Layer, size)
	if err != nil {
		return nil, err
	}
	if b, ok := c.cached(k); ok {
		return b, nil
	}
	fk := k + "|" + p.Registry + "/" + p.Repository + "@" + p.Manifest
	if err := c.failedBefore(fk); err != nil {
		return nil, err
	}
	// The first caller's context makes it for everyone waiting: a caller
	// that goes away does not cancel the others' thumbnail.
	ch := c.group.DoChan(k, func() (any, error) {
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		b, err := c.make(mctx, p, size, k)
		if err != nil {
			c.remember(fk, err)
		}
		return b, err
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	}
}

// cached reads k from disk, if the cache holds it.
func (c *Cache) cached(k string) ([]byte, bool) {
	c.mu.Lock()
	f, ok := c.files[k]
	if ok {
		c.clock++
		f.used = c.clock
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(c.opts.Dir, k))
	if err != nil {
		c.mu.Lock()
		if c.files[k] == f {
			delete(c.files, k)
			c.total -= f.size
		}
		c.mu.Unlock()
		return nil, false
	}
	return b, true
}

// First returns the photo of manifest p.Manifest that stands for it before
// it is described: its first layer of an image media type, else its first
// layer. The gallery shows it while the manifest waits to be described.
func (c *Cache) First(ctx context.Context, p Photo) (Photo, error) {
	repo, err := c.opts.Registry.Repository(p.Registry, p.Repository)
	if err != nil {
		return p, err
	}
	m, err := c.opts.Registry.FetchManifest(ctx, repo, p.Manifest)
	if err != nil {
		if fault.Is(err, fault.KindSkip) {
			return p, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return p, err
	}
	im, err := registry.ParseImageManifest(m)
	if err != nil || len(im.Layers) == 0 {
		return p, fmt.Errorf("%w: %s/%s@%s is no image manifest with layers", ErrNotFound, p.Registry, p.Repository, p.Manifest)
	}
	i := max(0, slices.IndexFunc(im.Layers, func(l ocispec.Descriptor) bool { return strings.HasPrefix(l.MediaType, "image/") }))
	p.Layer = im.Layers[i].Digest.String()
	return p, nil
}

// make fetches the layer, checks it belongs to the manifest, and makes and
// stores the thumbnail.
func (c *Cache) make(ctx context.Context, p Photo, size int, k string) ([]byte, error) {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	repo, err := c.opts.Registry.Repository(p.Registry, p.Repository)
	if err != nil {
		return nil, err
	}
	m, err := c.opts.Registry.FetchManifest(ctx, repo, p.Manifest)
	if err != nil {
		if fault.Is(err, fault.KindSkip) {
			return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return nil, err
	}
	im, err := registry.ParseImageManifest(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	i := slices.IndexFunc(im.Layers, func(l ocispec.Descriptor) bool { return l.Digest.String() == p.Layer })
	if i < 0 {
		return nil, fmt.Errorf("%w: %s is not a layer of %s/%s@%s", ErrNotFound, p.Layer, p.Registry, p.Repository, p.Manifest)
	}
	layer := im.Layers[i]
	if layer.Size > c.opts.MaxBlobBytes {
		return nil, fmt.Errorf("%w: layer %s is %d bytes, over %d", ErrNotPhoto, p.Layer, layer.Size, c.opts.MaxBlobBytes)
	}
	data, err := c.opts.Registry.FetchBlob(ctx, repo, layer, c.opts.MaxBlobBytes)
	if err != nil {
		return nil, err
	}
	b, err := Make(ctx, data, size)
	if err != nil {
		return nil, err
	}
	if err := c.store(k, b); err != nil {
		c.opts.Log.Warn("thumbnail not cached", "layer", p.Layer, "err", err)
	}
	return b, nil
}

// notAsIs is a media type no image has: given as the only one imageprep may
// pass through, it makes Prepare decode and re-encode every image.
const notAsIs = "application/x.regscribe.never-as-is"

// Make turns the bytes of an image layer into a JPEG whose longest side is at
// most maxSide, upright. The result is always decoded and re-encoded pixels,
// never the input. Bytes that are no image imageprep decodes (SVG, HTML, a
// truncated file) or too large to decode fail with [ErrNotPhoto]. A HEIC or
// AVIF decode stops when ctx ends, with ctx's error (the image is not at
// fault, so it is not remembered as no photo).
func Make(ctx context.Context, data []byte, maxSide int) ([]byte, error) {
	p, err := imageprep.PrepareContext(ctx, data, imageprep.Limits{
		MaxSide:        maxSide,
		Accept:         []string{notAsIs},
		JPEGQuality:    80,
		MaxDecodeBytes: 256 << 20,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrNotPhoto, err)
	}
	if !p.Converted || p.MediaType != "image/jpeg" {
		return nil, fmt.Errorf("%w: image preparation passed the layer through as %s", ErrNotPhoto, p.MediaType)
	}
	return p.Data, nil
}

// store writes b as k (atomically: a reader never sees half a file) and
// evicts the least recently used files beyond the size bound.
func (c *Cache) store(k string, b []byte) error {
	path := filepath.Join(c.opts.Dir, k)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.files[k]; ok {
		c.total -= old.size
	}
	c.clock++
	c.files[k] = &file{size: int64(len(b)), used: c.clock}
	c.total += int64(len(b))
	c.evict()
	return nil
}

// evict removes the least recently used files until the cache is within
// its bound. c.mu is held.
func (c *Cache) evict() {
	if c.total <= c.opts.MaxBytes {
		return
	}
	keys := make([]string, 0, len(c.files))
	for k := range c.files {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return int(c.files[a].used - c.files[b].used) })
	removed := 0
	for _, k := range keys {
		if c.total <= c.opts.MaxBytes {
			break
		}
		if err := os.Remove(filepath.Join(c.opts.Dir, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.opts.Log.Warn("thumbnail cache: eviction failed", "file", k, "err", err)
			continue
		}
		c.total -= c.files[k].size
		delete(c.files, k)
		removed++
	}
	c.opts.Log.Debug("thumbnail cache: evicted", "files", removed, "bytes", c.total, "max", c.opts.MaxBytes)
}

// How long a failure is remembered: a photo that cannot be decoded stays
// so; a registry that failed may answer soon.
const (
	rememberNotPhoto = 10 * time.Minute
	rememberOther    = 5 * time.Second
	maxFailures      = 10_000
)

func (c *Cache) remember(k string, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	d := rememberOther
	if errors.Is(err, ErrNotPhoto) || errors.Is(err, ErrNotFound) {
		d = rememberNotPhoto
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failed) >= maxFailures {
		clear(c.failed)
	}
	c.failed[k] = failure{err: err, until: time.Now().Add(d)}
}

func (c *Cache) failedBefore(k string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.failed[k]
	if !ok {
		return nil
	}
	if time.Now().After(f.until) {
		delete(c.failed, k)
		return nil
	}
	return f.err
}
