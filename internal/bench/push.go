package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// pusher pushes photos as `oras push REF photo.jpg:image/jpeg` does: each
// blob checked and pushed if missing, then the OCI 1.1 manifest in one PUT
// by tag. The registry announces exactly that one manifest push, so a photo
// makes one job (a push by digest and then a tag would make two).
type pusher struct {
	repo      *remote.Repository
	transport *http.Transport
}

// newPusher returns a pusher to host/repository that keeps up to conns
// connections open (a client of its own, not regscribe's).
func newPusher(host, repository string, conns int) (*pusher, error) {
	repo, err := remote.NewRepository(host + "/" + repository)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = conns
	repo.PlainHTTP = true
	repo.Client = &auth.Client{Client: &http.Client{Transport: t}, Cache: auth.NewCache()}
	return &pusher{repo: repo, transport: t}, nil
}

// close closes the pusher's idle connections, so that the registry can
// stop at once (a server waits for connections that never carried a
// request).
func (p *pusher) close() { p.transport.CloseIdleConnections() }

// tagOf is the tag photo number seq is pushed under.
func tagOf(seq int) string { return fmt.Sprintf("p%07d", seq) }

// push pushes one photo under tag and returns its manifest.
func (p *pusher) push(ctx context.Context, tag string, ph photo) (ocispec.Descriptor, error) {
	if err := p.pushBlob(ctx, ocispec.DescriptorEmptyJSON, func() io.Reader { return bytes.NewReader(ocispec.DescriptorEmptyJSON.Data) }); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := p.pushBlob(ctx, ph.desc, ph.Open); err != nil {
		return ocispec.Descriptor{}, err
	}
	config := ocispec.DescriptorEmptyJSON
	config.Data = nil
	raw, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.unknown.artifact.v1",
		Config:       config,
		Layers:       []ocispec.Descriptor{ph.desc},
		Annotations:  map[string]string{ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	if err := p.repo.PushReference(ctx, desc, bytes.NewReader(raw), tag); err != nil {
		return desc, fmt.Errorf("push %s:%s: %w", p.repo.Reference, tag, err)
	}
	return desc, nil
}

func (p *pusher) pushBlob(ctx context.Context, desc ocispec.Descriptor, open func() io.Reader) error {
	desc.Data = nil
	ok, err := p.repo.Exists(ctx, desc)
	if err != nil || ok {
		return err
	}
	if err := p.repo.Push(ctx, desc, open()); err != nil {
		return fmt.Errorf("push blob %s: %w", desc.Digest, err)
	}
	return nil
}

// pushed is when each photo's push completed, by tag.
type pushed struct {
	mu   sync.Mutex
	done map[string]time.Time
}

// pushAll pushes photos (numbered from first) with clients pushes at once.
func (p *pusher) pushAll(ctx context.Context, photos []photo, first, clients int) (*pushed, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &pushed{done: make(map[string]time.Time, len(photos))}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(photos) || ctx.Err() != nil {
					return
				}
				tag := tagOf(first + i)
				if _, err := p.push(ctx, tag, photos[i]); err != nil {
					errs <- err
					cancel()
					return
				}
				now := time.Now()
				out.mu.Lock()
				out.done[tag] = now
				out.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}
