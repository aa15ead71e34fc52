package reprocess_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// quietRegistry is a registry with no notification endpoint: what is pushed
// there is "pushed before regscribe was running", and queues no job. (The
// stack's own registry notifies its notifier, whose jobs would share their
// message ids with the ones reprocess publishes and be dropped by the
// duplicate window; purging the job stream would not clear that window, and
// late notifications could arrive after a purge.)
type quietRegistry struct {
	Host   string
	Client *registry.Client
}

func startQuietRegistry(t testing.TB) *quietRegistry {
	t.Helper()
	reg, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Stop(ctx)
	})
	return newQuietRegistry(t, reg.Addr())
}

func newQuietRegistry(t testing.TB, host string) *quietRegistry {
	client, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	return &quietRegistry{Host: host, Client: client}
}

// startGGCRRegistry is go-containerregistry's registry: the referrers API
// and a catalog (the embedded Distribution's catalog lists nothing: its
// configuration has no catalog.maxentries).
func startGGCRRegistry(t testing.TB) *quietRegistry {
	srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true)))
	t.Cleanup(srv.Close)
	return newQuietRegistry(t, strings.TrimPrefix(srv.URL, "http://"))
}

// artifact is one manifest to push, with its tags.
type artifact struct {
	repo        string
	tags        []string
	files       []stacktest.File
	annotations map[string]string
}

// push pushes artifacts concurrently, as `oras push` would, and returns
// their manifest descriptors in order.
func (q *quietRegistry) push(t testing.TB, arts []artifact) []ocispec.Descriptor {
	t.Helper()
	out := make([]ocispec.Descriptor, len(arts))
	repos := map[string]*remote.Repository{}
	for _, a := range arts {
		if repos[a.repo] == nil {
			r, err := remote.NewRepository(q.Host + "/" + a.repo)
			require.NoError(t, err)
			r.PlainHTTP = true
			repos[a.repo] = r
		}
	}
	var g errgroup.Group
	g.SetLimit(16)
	for i, a := range arts {
		g.Go(func() error {
			ctx := context.Background()
			repo := repos[a.repo]
			var layers []ocispec.Descriptor
			for _, f := range a.files {
				d := content.NewDescriptorFromBytes(f.MediaType, f.Data)
				d.Annotations = map[string]string{ocispec.AnnotationTitle: f.Name}
				if ok, err := repo.Exists(ctx, d); err != nil {
					return err
				} else if !ok {
					if err := repo.Push(ctx, d, bytes.NewReader(f.Data)); err != nil {
						return err
					}
				}
				layers = append(layers, d)
			}
			ann := map[string]string{ocispec.AnnotationCreated: "2026-01-02T03:04:05Z"}
			for k, v := range a.annotations {
				ann[k] = v
			}
			desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1",
				oras.PackManifestOptions{Layers: layers, ManifestAnnotations: ann})
			if err != nil {
				return err
			}
			for _, tag := range a.tags {
				if err := repo.Tag(ctx, desc, tag); err != nil {
					return err
				}
			}
			out[i] = desc
			return nil
		})
	}
	require.NoError(t, g.Wait())
	return out
}

// startWorkers runs a worker pool on the stack's queue that may reach the
// quiet registry (the stack's own workers reach only the stack's registry).
func startWorkers(t testing.TB, s *stacktest.Stack, client *registry.Client, mode worker.Mode) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := worker.New(client, s.Describer, s.Memory, worker.Options{
		Concurrency: 8, AckWait: 5 * time.Second, MaxAttempts: 3, Backoff: []time.Duration{200 * time.Millisecond},
		Mode: mode, Reporter: queue.NewReporter(s.JS), Logger: stacktest.Logger(t),
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx, s.Consumer)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func jpegFile(t testing.TB, seed uint64) stacktest.File {
	return stacktest.File{Name: fmt.Sprintf("photo-%d.jpg", seed), MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, seed)}
}

func blobDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// run plans, leaves out what failed before, queues and waits, as
// `regscribe reprocess --missing --wait` does.
func run(t *testing.T, s *stacktest.Stack, q *quietRegistry, opts reprocess.PlanOptions, ropts reprocess.RunOptions) []reprocess.Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Registry = q.Host
	if opts.Model == "" {
		opts.Model = s.Describer.Model()
	}
	items, err := reprocess.Plan(ctx, q.Client, opts)
	require.NoError(t, err)
	if !opts.Force {
		dead, err := queue.DeadLetters(ctx, s.JS)
		require.NoError(t, err)
		reprocess.ExcludeFailed(items, dead)
	}
	ropts.Batch = reprocess.NewBatch()
	ropts.Wait = true
	require.NoError(t, reprocess.Run(ctx, s.JS, items, ropts))
	return items
}

// TestMissingDescribesExactlyTheUndescribedPhotos is the acceptance
// test: a repository of 300 tags reprocessed with --missing.
func TestMissingDescribesExactlyTheUndescribedPhotos(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	const repo = "photos/archive"
	model := s.Describer.Model()
	ctx := context.Background()

	var arts []artifact
	undescribed := map[string]bool{} // image blob digests the model must see once each
	// 200 photos without a description under 256 tags: 13 with three tags
	// (one of them "latest"), 30 with two.
	for i := range 200 {
		tags := []string{fmt.Sprintf("p%03d", i)}
		if i < 43 {
			tags = append(tags, fmt.Sprintf("p%03d-a", i))
		}
		if i < 13 {
			tags = append(tags, fmt.Sprintf("p%03d-b", i))
		}
		if i == 0 {
			tags[2] = "latest"
		}
		f := jpegFile(t, uint64(1000+i))
		undescribed[blobDigest(f.Data)] = true
		arts = append(arts, artifact{repo: repo, tags: tags, files: []stacktest.File{f}})
	}
	// 3 photos described by another model: described again, by this one.
	for i := range 3 {
		f := jpegFile(t, uint64(2000+i))
		undescribed[blobDigest(f.Data)] = true
		arts = append(arts, artifact{repo: repo, tags: []string{fmt.Sprintf("o%d", i)}, files: []stacktest.File{f}, annotations: map[string]string{
			registry.AnnotationDescription: "An old description.", registry.AnnotationModel: "ollama/llava:7b",
		}})
	}
	// 15 artifacts without an image layer.
	for i := range 15 {
		mt := []string{"text/plain", "application/spdx+json", ocispec.MediaTypeImageLayerGzip}[i%3]
		arts = append(arts, artifact{repo: repo, tags: []string{fmt.Sprintf("n%02d", i)}, files: []stacktest.File{{Name: fmt.Sprintf("file-%d", i), MediaType: mt, Data: []byte(fmt.Sprintf("not a photo %d", i))}}})
	}
	// 5 corrupt JPEGs (a valid header, then nothing), the first under two tags.
	corrupt := map[int]bool{}
	for i := range 5 {
		good := stacktest.JPEG(t, 200, 200, uint64(3000+i))
		tags := []string{fmt.Sprintf("c%d", i)}
		if i == 0 {
			tags = append(tags, "c0-b")
		}
		corrupt[len(arts)] = true
		arts = append(arts, artifact{repo: repo, tags: tags, files: []stacktest.File{{Name: "broken.jpg", MediaType: "image/jpeg", Data: good[:len(good)/3]}}})
	}
	// 20 photos described already by this model: 10 as annotations, 10 as
	// referrers (which adds 10 sha256-<hex> fallback tags on Distribution).
	described := len(arts)
	for i := range 20 {
		arts = append(arts, artifact{repo: repo, tags: []string{fmt.Sprintf("d%02d", i)}, files: []stacktest.File{jpegFile(t, uint64(4000+i))}})
	}
	pushed := q.push(t, arts)
	for i := range 20 {
		mode := worker.ModeAnnotation
		if i >= 10 {
			mode = worker.ModeReferrer
		}
		w := worker.New(q.Client, s.Describer, s.Memory, worker.Options{Mode: mode, Logger: stacktest.Logger(t)})
		_, err := w.Process(ctx, queue.Job{Version: 1, Registry: q.Host, Repository: repo, Digest: pushed[described+i].Digest.String(), Tag: fmt.Sprintf("d%02d", i), Source: "test"})
		require.NoError(t, err)
	}
	callsBefore := len(s.Model.Calls())
	require.Equal(t, 20, callsBefore)

	startWorkers(t, s, q.Client, worker.ModeAuto)
	var events []reprocess.Progress
	items := run(t, s, q, reprocess.PlanOptions{Repository: repo, PageSize: 50},
		reprocess.RunOptions{OnProgress: func(p reprocess.Progress) { events = append(events, p) }})

	c := reprocess.Summarize(items)
	require.Equal(t, reprocess.Counts{
		Tags: 300, Manifests: 243, NotPhotos: 15, AlreadyDescribed: 20,
		Queued: 208, Described: 203, Failed: 5, ModelCalls: 203,
	}, c)

	// The model saw each undescribed photo exactly once, and nothing else.
	calls := s.Model.Calls()[callsBefore:]
	require.Len(t, calls, len(undescribed))
	seen := map[string]bool{}
	for _, call := range calls {
		d := blobDigest(call.Images[0])
		require.True(t, undescribed[d], "the model saw %s, which needed no description", d)
		require.False(t, seen[d], "the model saw %s twice", d)
		seen[d] = true
	}
	require.Empty(t, s.Model.Problems())

	// Each corrupt photo is reported with its tags and the reason.
	failures := reprocess.Failures(items)
	require.Len(t, failures, 5)
	var failedDigests []string
	for _, f := range failures {
		failedDigests = append(failedDigests, f.Digest)
		require.Equal(t, reprocess.Queued, f.Status)
		require.Contains(t, f.Result, "corrupt", "%s", f.Ref())
		if f.Tags[0] == "c0" {
			require.Equal(t, []string{"c0", "c0-b"}, f.Tags)
		}
	}
	var corruptDigests []string
	for i := range corrupt {
		corruptDigests = append(corruptDigests, pushed[i].Digest.String())
	}
	sort.Strings(failedDigests)
	sort.Strings(corruptDigests)
	require.Equal(t, corruptDigests, failedDigests)

	// Every tag of every photo now points at a manifest described by the
	// model, the other tags of a photo included.
	r, err := q.Client.Repository(q.Host, repo)
	require.NoError(t, err)
	for i, a := range arts {
		if corrupt[i] || a.files[0].MediaType != "image/jpeg" || i >= described+10 {
			continue // referrer-described photos keep their manifest
		}
		var written string
		for _, tag := range a.tags {
			m, err := q.Client.FetchManifest(ctx, r, tag)
			require.NoError(t, err)
			im, err := registry.ParseImageManifest(m)
			require.NoError(t, err)
			require.Equal(t, model, im.Annotations[registry.AnnotationModel], "%s:%s", repo, tag)
			require.Equal(t, "A test photo "+modeltest.Digest(a.files[0].Data)[:19]+".", im.Annotations[registry.AnnotationDescription], "%s:%s", repo, tag)
			if written == "" {
				written = m.Descriptor.Digest.String()
			}
			require.Equal(t, written, m.Descriptor.Digest.String(), "all tags of a photo point at one manifest")
		}
	}

	// Progress: one event after queueing, then one per photo, counting up.
	require.Len(t, events, 1+208)
	require.Nil(t, events[0].Item)
	require.Equal(t, 208, events[0].Queued)
	last := events[len(events)-1]
	require.Equal(t, 203, last.Described)
	require.Equal(t, 5, last.Failed)
	require.Equal(t, 208, last.Done())

	// A second run queues nothing, and the model is not called again.
	again := run(t, s, q, reprocess.PlanOptions{Repository: repo, PageSize: 50}, reprocess.RunOptions{})
	require.Equal(t, reprocess.Counts{
		Tags: 300, Manifests: 243, NotPhotos: 15, AlreadyDescribed: 223, FailedBefore: 5,
	}, reprocess.Summarize(again))
	for _, it := range again {
		if it.Status == reprocess.FailedBefore {
			require.Contains(t, it.Reason, "corrupt")
		}
	}
	require.Len(t, s.Model.Calls(), callsBefore+len(undescribed))
}

// TestMissingReplacesAnotherModelOnEveryTag: a photo under two tags,
// annotated by another model, ends with this model's description on both
// tags, with one model call; a second run queues nothing.
func TestMissingReplacesAnotherModelOnEveryTag(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	f := jpegFile(t, 7)
	q.push(t, []artifact{{repo: "photos/old", tags: []string{"latest", "v1"}, files: []stacktest.File{f}, annotations: map[string]string{
		registry.AnnotationDescription: "An old description.", registry.AnnotationModel: "ollama/llava:7b",
	}}})
	startWorkers(t, s, q.Client, worker.ModeAuto)
	calls := len(s.Model.Calls())

	items := run(t, s, q, reprocess.PlanOptions{Repository: "photos/old"}, reprocess.RunOptions{})
	require.Equal(t, reprocess.Counts{Tags: 2, Manifests: 1, Queued: 1, Described: 1, ModelCalls: 1}, reprocess.Summarize(items))
	require.True(t, items[0].Replace)
	require.False(t, items[0].Force)
	require.Len(t, s.Model.Calls(), calls+1)
	r, err := q.Client.Repository(q.Host, "photos/old")
	require.NoError(t, err)
	var written []string
	for _, tag := range []string{"latest", "v1"} {
		m, err := q.Client.FetchManifest(context.Background(), r, tag)
		require.NoError(t, err)
		im, err := registry.ParseImageManifest(m)
		require.NoError(t, err)
		require.Equal(t, s.Describer.Model(), im.Annotations[registry.AnnotationModel], "tag %s", tag)
		require.Equal(t, "A test photo "+modeltest.Digest(f.Data)[:19]+".", im.Annotations[registry.AnnotationDescription], "tag %s", tag)
		written = append(written, m.Descriptor.Digest.String())
	}
	require.Equal(t, written[0], written[1], "both tags point at one manifest")

	again := run(t, s, q, reprocess.PlanOptions{Repository: "photos/old"}, reprocess.RunOptions{})
	require.Equal(t, reprocess.Counts{Tags: 2, Manifests: 1, AlreadyDescribed: 1}, reprocess.Summarize(again))
	require.Len(t, s.Model.Calls(), calls+1)
}

// TestRunWithoutWaitingQueuesEveryTagOnce: without --wait the other tags of
// a photo are queued at once, after the photos; a second run within the
// duplicate window finds them queued.
func TestRunWithoutWaitingQueuesEveryTagOnce(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	q.push(t, []artifact{
		{repo: "photos/a", tags: []string{"one", "two", "three"}, files: []stacktest.File{jpegFile(t, 1)}},
		{repo: "photos/a", tags: []string{"solo"}, files: []stacktest.File{jpegFile(t, 2)}},
	})
	ctx := context.Background()
	plan := func() []reprocess.Item {
		items, err := reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: "photos/a", Model: s.Describer.Model()})
		require.NoError(t, err)
		return items
	}
	items := plan()
	require.NoError(t, reprocess.Run(ctx, s.JS, items, reprocess.RunOptions{Batch: reprocess.NewBatch()}))
	require.Equal(t, reprocess.Counts{Tags: 4, Manifests: 2, Queued: 2, Pending: 2}, reprocess.Summarize(items))
	require.Equal(t, "one", items[0].Tag, "the first tag in order is the one the job names")
	info, err := s.Consumer.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), info.NumPending, "one job per tag: each write-back moves its own tag")

	again := plan()
	require.NoError(t, reprocess.Run(ctx, s.JS, again, reprocess.RunOptions{Batch: reprocess.NewBatch()}))
	require.Equal(t, reprocess.Counts{Tags: 4, Manifests: 2, AlreadyQueued: 2}, reprocess.Summarize(again))
	info, err = s.Consumer.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), info.NumPending)
}

// TestReferrerModeAndForce: in referrer mode one job per photo is enough
// (the referrer serves every tag); --force queues described photos again.
func TestReferrerModeAndForce(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	pushed := q.push(t, []artifact{
		{repo: "photos/r", tags: []string{"x", "y"}, files: []stacktest.File{jpegFile(t, 5)}},
		{repo: "photos/r", tags: []string{"z"}, files: []stacktest.File{jpegFile(t, 6)}},
		{repo: "photos/r", tags: []string{"sbom"}, files: []stacktest.File{{Name: "sbom.json", MediaType: "application/spdx+json", Data: []byte("{}")}}},
	})
	// z was described before, without the queue.
	w := worker.New(q.Client, s.Describer, s.Memory, worker.Options{Mode: worker.ModeReferrer, Logger: stacktest.Logger(t)})
	_, err := w.Process(context.Background(), queue.Job{Version: 1, Registry: q.Host, Repository: "photos/r", Digest: pushed[1].Digest.String(), Source: "test"})
	require.NoError(t, err)
	startWorkers(t, s, q.Client, worker.ModeReferrer)

	items := run(t, s, q, reprocess.PlanOptions{Repository: "photos/r"}, reprocess.RunOptions{Referrer: true})
	require.Equal(t, reprocess.Counts{Tags: 4, Manifests: 3, NotPhotos: 1, AlreadyDescribed: 1, Queued: 1, Described: 1, ModelCalls: 1}, reprocess.Summarize(items))
	require.Len(t, s.Model.Calls(), 2)

	// The fallback tags sha256-<hex> the referrers added are not listed; the
	// photos count as described, for all their tags.
	items = run(t, s, q, reprocess.PlanOptions{Repository: "photos/r"}, reprocess.RunOptions{Referrer: true})
	require.Equal(t, reprocess.Counts{Tags: 4, Manifests: 3, NotPhotos: 1, AlreadyDescribed: 2}, reprocess.Summarize(items))

	// --force queues a described photo again, and the worker describes it
	// again. (x's job of the first run is still in the duplicate window,
	// which a forced job does not escape yet: Job.ID leaves Force out.)
	items = run(t, s, q, reprocess.PlanOptions{Repository: "photos/r", Tag: "z", Force: true}, reprocess.RunOptions{Referrer: true})
	require.Equal(t, reprocess.Counts{Tags: 1, Manifests: 1, Queued: 1, Described: 1, ModelCalls: 1}, reprocess.Summarize(items))
	require.True(t, items[0].Force)
	require.Len(t, s.Model.Calls(), 3)
}

// TestPlanWholeRegistry lists every repository through the catalog API,
// page by page, and a glob picks tags.
func TestPlanWholeRegistry(t *testing.T) {
	t.Parallel()
	q := startGGCRRegistry(t)
	q.push(t, []artifact{
		{repo: "a/photos", tags: []string{"v1", "v2"}, files: []stacktest.File{jpegFile(t, 1)}},
		{repo: "b/photos", tags: []string{"v1"}, files: []stacktest.File{jpegFile(t, 2)}},
		{repo: "c/photos", tags: []string{"draft"}, files: []stacktest.File{jpegFile(t, 3)}},
		{repo: "d/images", tags: []string{"v1"}, files: []stacktest.File{{Name: "layer.tar.gz", MediaType: ocispec.MediaTypeImageLayerGzip, Data: []byte("x")}}},
	})
	items, err := reprocess.Plan(context.Background(), q.Client, reprocess.PlanOptions{Registry: q.Host, Model: "ollama/m", Tag: "v*"})
	require.NoError(t, err)
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s %v %s", it.Repository, it.Tags, it.Status))
	}
	require.Equal(t, []string{
		"a/photos [v1 v2] queue",
		"b/photos [v1] queue",
		"d/images [v1] not-photo",
	}, got)

	_, err = reprocess.Plan(context.Background(), q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: "nothing/here", Model: "ollama/m"})
	require.ErrorContains(t, err, "nothing/here")
	_, err = reprocess.Plan(context.Background(), q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: "a/photos", Model: "ollama/m", Tag: "[v"})
	require.ErrorContains(t, err, "glob")
}

func TestPrimaryTagAndFallbackTags(t *testing.T) {
	t.Parallel()
	require.Equal(t, "latest", reprocess.PrimaryTag([]string{"a", "latest", "z"}))
	require.Equal(t, "a", reprocess.PrimaryTag([]string{"b", "a"}))
	require.Empty(t, reprocess.PrimaryTag(nil))
	hex64 := digest.FromString("x").Encoded()
	require.True(t, reprocess.IsFallbackTag("sha256-"+hex64))
	require.False(t, reprocess.IsFallbackTag("sha256-"+hex64[:10]))
	require.False(t, reprocess.IsFallbackTag("v1"))
}

// TestWaitingEndsWhenResultsAreLost: a worker that acknowledges jobs but
// never reports them (it died in between) does not make waiting hang: once
// the queue is idle for IdleGrace, Run gives up on the missing results.
func TestWaitingEndsWhenResultsAreLost(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	q.push(t, []artifact{{repo: "photos/lost", tags: []string{"v1"}, files: []stacktest.File{jpegFile(t, 9)}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			batch, err := s.Consumer.Fetch(1, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				continue
			}
			for msg := range batch.Messages() {
				_ = msg.Ack()
			}
		}
	}()
	items, err := reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: "photos/lost", Model: s.Describer.Model()})
	require.NoError(t, err)
	err = reprocess.Run(ctx, s.JS, items, reprocess.RunOptions{Batch: reprocess.NewBatch(), Wait: true, IdleGrace: time.Second})
	require.ErrorIs(t, err, reprocess.ErrResultsLost)
	require.Equal(t, reprocess.Counts{Tags: 1, Manifests: 1, Queued: 1, Pending: 1}, reprocess.Summarize(items))
	require.Len(t, reprocess.Pending(items), 1)
}

// countingTransport counts the manifest requests a client makes, by method.
type countingTransport struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/manifests/") {
		c.mu.Lock()
		c.calls[r.Method]++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

// TestPlanSettledTagsCostOneHead: with Settled, a tag whose digest is
// settled costs one HEAD and no manifest fetch, and is Unchanged; a tag
// Settled does not know is fetched and judged as without it.
func TestPlanSettledTagsCostOneHead(t *testing.T) {
	t.Parallel()
	q := startGGCRRegistry(t)
	descs := q.push(t, []artifact{
		{repo: "photos", tags: []string{"old"}, files: []stacktest.File{jpegFile(t, 1)}},
		{repo: "photos", tags: []string{"new"}, files: []stacktest.File{jpegFile(t, 2)}},
	})
	ct := &countingTransport{calls: map[string]int{}}
	client, err := registry.New([]registry.Endpoint{{Host: q.Host, PlainHTTP: true}},
		registry.Options{Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{Transport: ct}})
	require.NoError(t, err)
	items, err := reprocess.Plan(context.Background(), client, reprocess.PlanOptions{
		Registry: q.Host, Repository: "photos", Model: "ollama/m",
		Settled: func(repo, tag, dgst string) bool {
			return repo == "photos" && tag == "old" && dgst == descs[0].Digest.String()
		},
	})
	require.NoError(t, err)
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%v %s %s", it.Tags, it.Status, it.Digest))
	}
	require.Equal(t, []string{
		"[new] queue " + descs[1].Digest.String(),
		"[old] unchanged " + descs[0].Digest.String(),
	}, got)
	require.Equal(t, 2, ct.count(http.MethodHead), "one HEAD per tag")
	require.Equal(t, 1, ct.count(http.MethodGet), "a manifest fetched for the unknown tag only")
	c := reprocess.Summarize(items)
	require.Equal(t, 2, c.Tags)
	require.Equal(t, 1, c.Unchanged)
	require.Equal(t, 1, c.Manifests)
}

// TestPlanNamesTheRegistryAsConfigured: a plan for a registry named by
// another of its names (localhost for 127.0.0.1) makes items, and so jobs
// and events, that name it as configured.
func TestPlanNamesTheRegistryAsConfigured(t *testing.T) {
	t.Parallel()
	q := startQuietRegistry(t)
	q.push(t, []artifact{{repo: "photos/named", tags: []string{"latest"}, files: []stacktest.File{jpegFile(t, 31)}}})
	other := strings.Replace(q.Host, "127.0.0.1", "localhost", 1)
	require.NotEqual(t, q.Host, other)
	items, err := reprocess.Plan(context.Background(), q.Client, reprocess.PlanOptions{Registry: other, Repository: "photos/named", Model: "ollama/m"})
	require.NoError(t, err)
	require.NotEmpty(t, items)
	for _, it := range items {
		require.Equal(t, q.Host, it.Registry)
		require.Equal(t, q.Host, it.Ref()[:len(q.Host)])
	}
}
