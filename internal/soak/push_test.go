package soak_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

const (
	artifactTypePhoto     = "application/vnd.unknown.artifact.v1"
	artifactTypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	pushers               = 4
)

// task is one push: its artifact and the bytes of its blobs.
type task struct {
	a      *artifact
	photos [][]byte // per image layer (per child for an album)
	twoPUT bool     // push by digest, then tag (as `oras push` does): two notifications
	repush bool     // once described, push another photo to the same tag
}

// plan decides, from the seed, what is pushed, to which repository, in
// which notification format, and which photos are faults on purpose.
func (s *soak) plan(t *testing.T, size int) []*task {
	seq := s.rng.Uint64() >> 8
	jpeg := func() []byte {
		seq++
		return stacktest.JPEG(t, 64, 48, seq)
	}
	var tasks []*task
	add := func(kind, repo string, layers int, format string) *task {
		tk := &task{a: &artifact{kind: kind, repo: repo, tag: "latest"}}
		for range layers {
			tk.photos = append(tk.photos, jpeg())
		}
		tk.twoPUT = s.rng.IntN(2) == 0
		if s.refAPI {
			if format == "" {
				format = notifier.FormatDistribution
				if s.rng.Float64() < pTagOnly {
					format = []string{notifier.FormatQuay, notifier.FormatDockerHub}[s.rng.IntN(2)]
				}
			}
			s.formats[repo] = format
		}
		tasks = append(tasks, tk)
		return tk
	}
	for i := range size {
		tk := add("photo", fmt.Sprintf("soak/p%03d", i), 1, "")
		tk.repush = s.rng.IntN(12) == 0
	}
	for i := range max(size/10, 2) {
		add("multi", fmt.Sprintf("soak/m%02d", i), 2+s.rng.IntN(2), "")
	}
	for i := range max(size/15, 2) {
		add("album", fmt.Sprintf("soak/a%02d", i), 2+s.rng.IntN(2), "")
	}
	if s.refAPI {
		for i := range max(size/15, 2) {
			add("photo", fmt.Sprintf("soak/s%02d", i), 1, "").a.signed = true
		}
		for i := range 2 {
			tk := add("album", fmt.Sprintf("soak/as%02d", i), 2, "")
			tk.a.children = []*artifact{{kind: "child", repo: tk.a.repo, signed: true}}
		}
	}
	// Permanent faults: one job each (one PUT, by tag; Distribution's
	// format, so a repeated notification is the same job).
	for i := range 2 {
		tk := add("corrupt", fmt.Sprintf("soak/bad%d", i), 1, notifier.FormatDistribution)
		tk.photos[0] = corruptPhoto(s.rng.Uint64(), i%2 == 0)
		tk.twoPUT = false
	}
	tk := add("poison", "soak/poison", 1, notifier.FormatDistribution)
	tk.twoPUT = false
	s.poison[digest.FromBytes(tk.photos[0]).String()] = true
	s.rng.Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
	return tasks
}

// corruptPhoto is bytes that are not a JPEG, sent as image/jpeg: with a
// JPEG's first bytes (the header does not decode) or without.
func corruptPhoto(seed uint64, jpegStart bool) []byte {
	b := []byte(fmt.Sprintf("soak corrupt photo %d: not an image at all", seed))
	if jpegStart {
		b = append([]byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04}, b...)
	}
	return b
}

// push runs the plan with a few pushers, and meanwhile fires the faults
// that are not per request: a worker pool killed, NATS restarted,
// malformed notifications and malformed zot events.
func (s *soak) push(t *testing.T, size int) {
	tasks := s.plan(t, size)
	queue := make(chan *task)
	var done atomic.Int64
	var wg, repushes sync.WaitGroup
	errs := make(chan error, len(tasks)*2)
	for range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tk := range queue {
				if err := s.pushTask(tk); err != nil {
					errs <- fmt.Errorf("push %s: %w", tk.a.repo, err)
				}
				done.Add(1)
				if tk.repush {
					repushes.Add(1)
					go func() {
						defer repushes.Done()
						if err := s.repush(tk); err != nil {
							errs <- fmt.Errorf("push again to %s: %w", tk.a.repo, err)
						}
					}()
				}
			}
		}()
	}
	// The one-off faults, each when a share of the pushes is done.
	events := []struct {
		at   float64
		fire func()
	}{
		{0.2, func() { s.malformedNotifications() }},
		{0.3, func() { s.malformedZotEvents(t, 0) }},
		{0.35, func() {
			p := s.pools[s.intN(len(s.pools))]
			p.kill()
			s.fired(fmt.Sprintf("worker pool killed (pool %d)", p.id))
			s.oneOff(fmt.Sprintf("pool %d killed", p.id))
		}},
		{0.6, func() {
			s.oneOff("NATS stopped")
			s.stack.StopNode(0)
			time.Sleep(500*time.Millisecond + time.Duration(s.intN(1000))*time.Millisecond)
			s.stack.StartNode(t, 0)
			s.fired("NATS restarted")
			s.oneOff("NATS started again")
		}},
		{0.8, func() { s.malformedZotEvents(t, 1) }},
	}
	next := 0
	for _, tk := range tasks {
		queue <- tk
		for next < len(events) && float64(done.Load()) >= events[next].at*float64(len(tasks)) {
			events[next].fire()
			next++
		}
	}
	close(queue)
	wg.Wait()
	for ; next < len(events); next++ {
		events[next].fire()
	}
	repushes.Wait()
	s.notifying.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.mu.Lock()
	for _, tk := range tasks {
		s.arts = append(s.arts, tk.a)
	}
	s.mu.Unlock()
}

// pushTask pushes one artifact as a user would.
func (s *soak) pushTask(tk *task) error {
	ctx := context.Background()
	repo, err := s.repository(tk.a.repo)
	if err != nil {
		return err
	}
	a := tk.a
	if a.kind != "album" {
		return s.pushPhoto(ctx, repo, a, tk.photos, a.tag, tk.twoPUT)
	}
	var index ocispec.Index
	index.SchemaVersion, index.MediaType = 2, ocispec.MediaTypeImageIndex
	signedFirst := len(a.children) > 0
	a.children = nil
	for i, p := range tk.photos {
		c := &artifact{kind: "child", repo: a.repo, signed: signedFirst && i == 0}
		if err := s.pushPhoto(ctx, repo, c, [][]byte{p}, "", false); err != nil {
			return err
		}
		a.children = append(a.children, c)
		index.Manifests = append(index.Manifests, c.desc)
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return err
	}
	a.desc = content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, raw)
	return repo.PushReference(ctx, a.desc, bytes.NewReader(raw), a.tag)
}

func (s *soak) pushLayers(ctx context.Context, repo *remote.Repository, photos [][]byte) ([]ocispec.Descriptor, error) {
	if err := pushBlob(ctx, repo, emptyConfig, []byte("{}")); err != nil {
		return nil, err
	}
	var layers []ocispec.Descriptor
	for i, p := range photos {
		d := content.NewDescriptorFromBytes("image/jpeg", p)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("photo-%d.jpg", i+1)}
		if err := pushBlob(ctx, repo, d, p); err != nil {
			return nil, err
		}
		layers = append(layers, d)
	}
	return layers, nil
}

// pushPhoto pushes a manifest of photos and tags it (unless tag is ""): by
// digest and then by tag (twoPUT), or by tag at once. A signed photo's
// signature is pushed first, so the photo has a referrer from its first
// notification on.
func (s *soak) pushPhoto(ctx context.Context, repo *remote.Repository, a *artifact, photos [][]byte, tag string, twoPUT bool) error {
	layers, err := s.pushLayers(ctx, repo, photos)
	if err != nil {
		return err
	}
	a.layers = nil
	for _, l := range layers {
		a.layers = append(a.layers, l.Digest)
	}
	raw, desc := manifestOf(artifactTypePhoto, layers, nil)
	a.desc = desc
	if a.signed {
		if err := s.sign(ctx, repo, desc); err != nil {
			return err
		}
	}
	if tag == "" {
		return repo.Push(ctx, desc, bytes.NewReader(raw))
	}
	if twoPUT {
		if err := repo.Push(ctx, desc, bytes.NewReader(raw)); err != nil {
			return err
		}
		return repo.Tag(ctx, desc, tag)
	}
	return repo.PushReference(ctx, desc, bytes.NewReader(raw), tag)
}

// sign pushes a signature-like referrer of subject.
func (s *soak) sign(ctx context.Context, repo *remote.Repository, subject ocispec.Descriptor) error {
	sig := []byte("soak signature of " + subject.Digest.String())
	d := content.NewDescriptorFromBytes("application/vnd.dev.cosign.simplesigning.v1+json", sig)
	if err := pushBlob(ctx, repo, d, sig); err != nil {
		return err
	}
	raw, desc := manifestOf(artifactTypeSignature, []ocispec.Descriptor{d}, &subject)
	return repo.Push(ctx, desc, bytes.NewReader(raw))
}

// repush waits until tk's photo is described, then pushes another photo to
// its tag (the user replaced it).
func (s *soak) repush(tk *task) error {
	ctx := context.Background()
	repo, err := s.repository(tk.a.repo)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if n, _, err := s.descriptions(ctx, repo, tk.a, true); err == nil && n > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.mu.Lock()
	seq := s.rng.Uint64()
	s.mu.Unlock()
	next := &task{a: &artifact{kind: "photo", repo: tk.a.repo, tag: tk.a.tag}, twoPUT: tk.twoPUT}
	var buf bytes.Buffer
	if err := jpegEncode(&buf, seq); err != nil {
		return err
	}
	next.photos = [][]byte{buf.Bytes()}
	tk.a.superseded = true
	s.fired("tag pushed again after its photo was described")
	if err := s.pushPhoto(ctx, repo, next.a, next.photos, next.a.tag, next.twoPUT); err != nil {
		return err
	}
	s.mu.Lock()
	s.arts = append(s.arts, next.a)
	s.mu.Unlock()
	return nil
}

func pushBlob(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, data []byte) error {
	ok, err := repo.Exists(ctx, d)
	if err != nil || ok {
		return err
	}
	return repo.Push(ctx, d, bytes.NewReader(data))
}

// jpegEncode writes a 64×48 photo like stacktest.JPEG's (which needs a
// testing.TB, and repushes run on their own goroutines).
func jpegEncode(w io.Writer, seed uint64) error {
	return jpeg.Encode(w, stacktest.Picture(64, 48, seed), &jpeg.Options{Quality: 90})
}

func (s *soak) oneOff(what string) {
	s.mu.Lock()
	s.oneOffs = append(s.oneOffs, fmt.Sprintf("%s at +%s", what, time.Since(s.started).Round(100*time.Millisecond)))
	s.mu.Unlock()
}
