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

	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

const (
	artifactTypePhoto     = "application/vnd.unknown.artifact.v1"
	artifactTypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
	pushers               = 4
	// generic is oras's default layer media type, which says nothing of
	// what a layer holds.
	generic = ocispec.MediaTypeImageLayer
)

// task is one push: its artifact and the bytes of its blobs.
type task struct {
	a      *artifact
	photos [][]byte // per image layer (per child for an album); a text file's text
	twoPUT bool     // push by digest, then tag (as `oras push` does): two notifications
	// repush: push to the same tag again, the same manifest ("same") or
	// another photo ("other"), once the photo is described, or while the
	// model is describing it (during).
	repush string
	during bool
	held   bool // its tag link is held until a worker looks (re-push race)
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
		tk := &task{a: &artifact{kind: kind, repo: repo, tag: "latest", layerType: "image/jpeg"}}
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
		if kind != "corrupt" && kind != "poison" {
			if s.rng.Float64() < pOtherName {
				s.otherName[repo] = true
			}
			if kind != "album" && s.rng.Float64() < pGeneric {
				tk.a.layerType = generic
			}
		}
		tk.held = s.v.race && s.rng.Float64() < pHeldLink
		tasks = append(tasks, tk)
		return tk
	}
	for i := range size {
		tk := add("photo", fmt.Sprintf("soak/p%03d", i), 1, "")
		if s.rng.IntN(s.v.repushEvery) == 0 {
			tk.repush = []string{"same", "other"}[s.rng.IntN(2)]
			// Another photo while the first is described: a tag-only
			// notification (Quay, Docker Hub) names no manifest, so a push
			// overwritten by the first photo's tag move is not restored
			// (README, "A re-pushed tag ends described").
			tk.during = s.rng.IntN(2) == 0 && (tk.repush == "same" || !s.refAPI || s.formats[tk.a.repo] == notifier.FormatDistribution)
		}
	}
	for i := range max(size/10, 2) {
		add("multi", fmt.Sprintf("soak/m%02d", i), 2+s.rng.IntN(2), "")
	}
	for i := range max(size/15, 2) {
		add("album", fmt.Sprintf("soak/a%02d", i), 2+s.rng.IntN(2), "")
	}
	// Text files pushed with the generic media type, one named like a
	// photo: each must end refused, visibly, never as a dead letter.
	for i := range max(size/20, 2) {
		tk := add("text", fmt.Sprintf("soak/t%02d", i), 0, "")
		tk.a.layerType = generic
		tk.photos = [][]byte{fmt.Appendf(nil, "soak notes %d: a text file, not a photo.\nIt says nothing a model could describe.\n", s.rng.Uint64())}
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
				if tk.repush != "" && tk.during {
					s.mu.Lock()
					for _, p := range tk.photos {
						s.describing[digest.FromBytes(p).String()] = make(chan struct{})
					}
					s.mu.Unlock()
				}
				if err := s.pushTask(tk); err != nil {
					errs <- fmt.Errorf("push %s: %w", tk.a.repo, err)
				}
				s.mu.Lock()
				s.pushed[tk.a.repo] = true
				s.mu.Unlock()
				done.Add(1)
				if tk.repush != "" {
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
		{0.25, func() {
			if s.v.race {
				s.busyMachine()
			}
		}},
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
		{0.65, func() { s.reprocessOtherName(t) }},
		{0.75, func() { s.idleMachine() }},
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
	if tk.held {
		s.gate.Arm(a.repo, a.tag)
		s.fired("tag link held until a worker looked (first push)")
	}
	if a.kind != "album" {
		return s.pushPhoto(ctx, repo, a, tk.photos, a.tag, tk.twoPUT)
	}
	var index ocispec.Index
	index.SchemaVersion, index.MediaType = 2, ocispec.MediaTypeImageIndex
	signedFirst := len(a.children) > 0
	a.children = nil
	for i, p := range tk.photos {
		c := &artifact{kind: "child", repo: a.repo, signed: signedFirst && i == 0, layerType: a.layerType}
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

// pushLayers pushes the empty config and the files of a, each a layer of
// a.layerType titled like a photo (a text file too: its name says nothing).
func (s *soak) pushLayers(ctx context.Context, repo *remote.Repository, a *artifact, files [][]byte) ([]ocispec.Descriptor, error) {
	if err := pushBlob(ctx, repo, emptyConfig, []byte("{}")); err != nil {
		return nil, err
	}
	var layers []ocispec.Descriptor
	for i, f := range files {
		d := content.NewDescriptorFromBytes(a.layerType, f)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("photo-%d.jpg", i+1)}
		if err := pushBlob(ctx, repo, d, f); err != nil {
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
	layers, err := s.pushLayers(ctx, repo, a, photos)
	if err != nil {
		return err
	}
	a.layers = nil
	if a.kind != "text" {
		for _, l := range layers {
			a.layers = append(a.layers, l.Digest)
		}
	}
	a.raw, a.desc = manifestOf(artifactTypePhoto, layers, nil)
	if a.signed {
		if err := s.sign(ctx, repo, a.desc); err != nil {
			return err
		}
	}
	return pushManifest(ctx, repo, a, tag, twoPUT)
}

// pushManifest pushes a's manifest and tags it (unless tag is ""): by
// digest and then by tag (twoPUT), or by tag at once.
func pushManifest(ctx context.Context, repo *remote.Repository, a *artifact, tag string, twoPUT bool) error {
	if tag == "" {
		return repo.Push(ctx, a.desc, bytes.NewReader(a.raw))
	}
	if twoPUT {
		if err := repo.Push(ctx, a.desc, bytes.NewReader(a.raw)); err != nil {
			return err
		}
		return repo.Tag(ctx, a.desc, tag)
	}
	return repo.PushReference(ctx, a.desc, bytes.NewReader(a.raw), tag)
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

// repush pushes to tk's tag again, once its photo is described or, for
// tk.during, while the model describes it: the same manifest again (the
// user pushed it twice) or another photo (the user replaced it). In the
// re-push race sub-soak the tag's link is held until a worker looks.
func (s *soak) repush(tk *task) error {
	ctx := context.Background()
	repo, err := s.repository(tk.a.repo)
	if err != nil {
		return err
	}
	when := "after its photo was described"
	if tk.during {
		when = "while the model described its photo"
		s.mu.Lock()
		ch := s.describing[tk.a.layers[0].String()]
		s.mu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			case <-time.After(20 * time.Second):
			}
		}
	} else {
		described := false
		deadline := time.Now().Add(20 * time.Second)
		for !described && time.Now().Before(deadline) {
			if n, _, err := s.descriptions(ctx, repo, tk.a, true); err == nil && n > 0 {
				described = true
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		s.mu.Lock()
		tagOnly := s.formats[tk.a.repo] == notifier.FormatQuay || s.formats[tk.a.repo] == notifier.FormatDockerHub
		s.mu.Unlock()
		if !described && tagOnly && tk.repush == "other" {
			// Its job has not run yet (a busy machine, a NATS restart):
			// another photo now would be the one a tag-only notification
			// names when the job runs, and the first never described, as
			// the README says. That is no re-push after a description.
			s.fired("tag pushed again: skipped, a tag-only notification's photo not described within 20s")
			return nil
		}
	}
	if s.v.race {
		s.gate.Arm(tk.a.repo, tk.a.tag)
	}
	if tk.repush == "same" {
		s.mu.Lock()
		tk.a.again = when
		s.mu.Unlock()
		s.fired("tag pushed again: the same manifest, " + when)
		return pushManifest(ctx, repo, tk.a, tk.a.tag, tk.twoPUT)
	}
	s.mu.Lock()
	seq := s.rng.Uint64()
	s.mu.Unlock()
	next := &task{a: &artifact{kind: "photo", repo: tk.a.repo, tag: tk.a.tag, layerType: tk.a.layerType}, twoPUT: tk.twoPUT}
	var buf bytes.Buffer
	if err := jpegEncode(&buf, seq); err != nil {
		return err
	}
	next.photos = [][]byte{buf.Bytes()}
	s.mu.Lock()
	tk.a.superseded = true
	s.mu.Unlock()
	s.fired("tag pushed again: another photo, " + when)
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

// reprocessOtherName runs a reprocess of the repositories pushed to as
// localhost:PORT (those pushed so far), naming the registry so: its jobs
// and the descriptions it finds carry that name, as a reprocess of a
// regscribe before one name per registry did, and as jobs queued then still
// do. Workers and the index must take it for the registry it is.
func (s *soak) reprocessOtherName(t *testing.T) {
	ctx := context.Background()
	s.mu.Lock()
	var repos []string
	for _, r := range sortedKeys(s.otherName) {
		if s.pushed[r] {
			repos = append(repos, r)
		}
	}
	s.mu.Unlock()
	if len(repos) == 0 {
		return
	}
	items, err := reprocess.Plan(ctx, s.stack.Client, reprocess.PlanOptions{Registry: s.local, Repositories: repos, Model: s.model, Backfill: true})
	if err != nil {
		// The registry's 503 bursts can stop a plan; the photos are
		// described by their pushes' jobs either way.
		t.Logf("reprocess of %d repositories as %s: plan: %v", len(repos), s.local, err)
		return
	}
	err = reprocess.Run(ctx, s.stack.JS, items, reprocess.RunOptions{Batch: reprocess.NewBatch(), Referrer: s.mode == worker.ModeReferrer})
	if err != nil {
		t.Errorf("reprocess of %d repositories as %s: %v", len(repos), s.local, err)
	}
	queued, found := 0, 0
	for _, it := range items {
		if it.Status == reprocess.Queued {
			queued++
		}
		found += it.Indexed
	}
	s.fired("reprocess naming the registry " + "localhost:PORT")
	s.oneOff(fmt.Sprintf("reprocess as %s of %d repositories: %d photos queued, %d found descriptions published", s.local, len(repos), queued, found))
}
