package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/vision"
)

// demoDesign is the conference demo regscribe grew from, rebuilt for the
// comparison: the registry's notification request itself fetches the
// manifest and the photo, asks the model and pushes the manifest again with
// the description, one request at a time. No queue, no memory, no image
// preparation (the photo goes to the model as it is).
type demoDesign struct {
	host  string
	model *vision.Ollama

	mu        sync.Mutex // one photo at a time
	repos     map[string]*remote.Repository
	described chan time.Time
	failed    chan error
}

// ServeHTTP takes a Distribution notification and describes each manifest
// pushed by tag before answering.
func (d *demoDesign) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var env struct {
		Events []struct {
			Action string `json:"action"`
			Target struct {
				MediaType  string `json:"mediaType"`
				Digest     string `json:"digest"`
				Repository string `json:"repository"`
				Tag        string `json:"tag"`
			} `json:"target"`
		} `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, e := range env.Events {
		t := e.Target
		if e.Action != "push" || t.MediaType != ocispec.MediaTypeImageManifest || t.Tag == "" {
			continue
		}
		d.mu.Lock()
		err := d.describe(r.Context(), t.Repository, t.Digest, t.Tag)
		d.mu.Unlock()
		if err != nil {
			select {
			case d.failed <- err:
			default:
			}
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
}

func (d *demoDesign) describe(ctx context.Context, repository, digest, tag string) error {
	repo, ok := d.repos[repository]
	if !ok {
		var err error
		if repo, err = remote.NewRepository(d.host + "/" + repository); err != nil {
			return err
		}
		repo.PlainHTTP = true
		d.repos[repository] = repo
	}
	_, raw, err := oras.FetchBytes(ctx, repo, digest, oras.DefaultFetchBytesOptions)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	if m.Annotations[registry.AnnotationDescription] != "" {
		return nil // its own write-back
	}
	var layer *ocispec.Descriptor
	for i, l := range m.Layers {
		if strings.HasPrefix(l.MediaType, "image/") {
			layer = &m.Layers[i]
			break
		}
	}
	if layer == nil {
		return nil
	}
	photo, err := content.FetchAll(ctx, repo, *layer)
	if err != nil {
		return err
	}
	desc, err := d.model.Describe(ctx, vision.Image{Data: photo, MediaType: layer.MediaType})
	if err != nil {
		return err
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[registry.AnnotationDescription] = desc.Text
	m.Annotations[registry.AnnotationAlt] = desc.Alt
	m.Annotations[registry.AnnotationModel] = desc.Model
	if raw, err = json.Marshal(m); err != nil {
		return err
	}
	if err := repo.PushReference(ctx, content.NewDescriptorFromBytes(m.MediaType, raw), bytes.NewReader(raw), tag); err != nil {
		return err
	}
	d.described <- time.Now()
	return nil
}

// demo measures the demo's design: DemoPhotos photos pushed Pushers at a
// time into a registry that notifies it, from the first push to the last
// description written back.
func (r *run) demo(ctx context.Context) (*Demo, error) {
	n := r.photosFor(r.opts.DemoPhotos)
	r.progress("demo: %d × %s described inside the notification request, one at a time", n, r.opts.Kind.Describe())
	dir, err := os.MkdirTemp("", "regscribe-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	model, err := newDescriber(r.model)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "registry")
	if r.opts.Storage == InMemory {
		root = ""
	}
	reg, err := embedded.StartRegistry(ctx, embedded.RegistryOptions{
		RootDir: root, Listen: "127.0.0.1:0",
		NotifyURL: "http://" + ln.Addr().String() + "/", NotifyToken: randomToken(),
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	defer func() {
		closeIdleDefault()
		stopWithin(5*time.Second, reg.Stop)
	}()
	d := &demoDesign{host: reg.Addr(), model: model, repos: map[string]*remote.Repository{},
		described: make(chan time.Time, n), failed: make(chan error, 1)}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	p, err := newPusher(reg.Addr(), "photos/demo", r.opts.Pushers)
	if err != nil {
		return nil, err
	}
	defer p.close()
	before, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := p.pushAll(ctx, r.album.photos(r.opts.Kind, 0, n), 0, r.opts.Pushers); err != nil {
		return nil, err
	}
	var last time.Time
	timeout := time.After(time.Duration(n)*(3*r.opts.Latency+time.Second) + 30*time.Second)
	for range n {
		select {
		case last = <-d.described:
		case err := <-d.failed:
			return nil, fmt.Errorf("the demo's design failed: %w", err)
		case <-timeout:
			return nil, errors.New("the demo's design did not describe every photo in time")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	after, err := r.modelStats(ctx)
	if err != nil {
		return nil, err
	}
	took := last.Sub(start)
	return &Demo{Photos: n, Kind: r.opts.Kind, Seconds: took.Seconds(), PerSecond: float64(n) / took.Seconds(),
		ModelCalls: after.Calls - before.Calls}, nil
}
