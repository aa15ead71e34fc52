package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// Tests of the description events workers publish (package feed): what a
// search index following the stream learns.

// stored is one event on the description stream with its message id.
type stored struct {
	feed.Event
	ID string
}

// streamEvents reads every event on the description stream, oldest first.
func streamEvents(t *testing.T, s *stacktest.Stack) []stored {
	t.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, feed.Stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []stored
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged by a tombstone, or superseded
		}
		require.NoError(t, err)
		e, err := feed.Parse(m.Data)
		require.NoError(t, err)
		out = append(out, stored{Event: e, ID: m.Header.Get(jetstream.MsgIDHeader)})
	}
	return out
}

// waitEvent waits for the one event match picks, and returns it.
func waitEvent(t *testing.T, s *stacktest.Stack, what string, match func(feed.Event) bool) stored {
	t.Helper()
	var got []stored
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, e := range streamEvents(t, s) {
			if match(e.Event) {
				got = append(got, e)
			}
		}
		return len(got) > 0
	}, 20*time.Second, 20*time.Millisecond, "no event: %s", what)
	require.Len(t, got, 1, "one event: %s", what)
	return got[0]
}

// resultOf waits for the result of the job message match picks.
func resultOf(t *testing.T, s *stacktest.Stack, what string, match func(queue.Result) bool) queue.Result {
	t.Helper()
	var got []queue.Result
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, r := range results(t, s) {
			if match(r) {
				got = append(got, r)
			}
		}
		return len(got) > 0
	}, 20*time.Second, 20*time.Millisecond, "no result: %s", what)
	require.Len(t, got, 1, "one result: %s", what)
	return got[0]
}

// signs answers like DescribeByDigest, with text visible in the photo.
func signs(c modeltest.Call) modeltest.Reply {
	d := modeltest.Digest(c.Images[0])
	return modeltest.JSONText("This image shows a test photo "+d[:19]+".", "Test photo "+d[7:19], visibleText(c.Images[0]), "test", "photo")
}

func visibleText(photo []byte) string { return "EXIT " + modeltest.Digest(photo)[7:13] }

func TestWrittenEventsOnTheStream(t *testing.T) {
	t.Parallel()
	for _, mode := range []worker.Mode{worker.ModeAnnotation, worker.ModeReferrer} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			// go-containerregistry's registry sends no notifications: the
			// test queues each push's job (a push by digest and then by tag
			// makes two, whose events race for the newest place).
			s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: mode}})
			s.Model.Answer = signs
			model := "ollama/" + stacktest.Model
			ctx := context.Background()

			photo := stacktest.JPEG(t, 160, 120, 800)
			pushed := s.Push(t, "photos/sign", "latest", stacktest.File{Name: "sign.jpg", MediaType: "image/jpeg", Data: photo})
			queueJob(t, s, queue.Job{Repository: "photos/sign", Digest: pushed.Digest.String(), Tag: "latest"})
			res := resultOf(t, s, "the push's job", func(r queue.Result) bool { return r.Job.Digest == pushed.Digest.String() })
			require.Equal(t, queue.Described, res.Outcome, res.Reason)
			e := waitEvent(t, s, "photos/sign", func(e feed.Event) bool { return e.Repository == "photos/sign" })
			require.Equal(t, feed.JobID(res.JobSeq, 0), e.ID, "the message id is the job message's")
			require.Equal(t, feed.Written, e.Kind)
			require.Equal(t, s.RegistryHost, e.Registry)
			require.Equal(t, []string{"latest"}, e.Tags)
			require.Equal(t, model, e.By)
			require.False(t, e.At.IsZero())
			require.Len(t, e.Photos, 1)
			p := e.Photos[0]
			require.Equal(t, modeltest.Digest(photo), p.Layer)
			require.Equal(t, "image/jpeg", p.MediaType)
			require.Equal(t, "sign.jpg", p.Title)
			require.Equal(t, expectedText(photo), p.Description)
			require.Equal(t, "Test photo "+modeltest.Digest(photo)[7:19], p.Alt)
			require.Equal(t, []string{"test", "photo"}, p.Keywords)
			require.Equal(t, visibleText(photo), p.Text)
			require.Equal(t, model, p.Model)
			require.False(t, p.Created.IsZero())

			now, m := s.Manifest(t, "photos/sign", "latest")
			if mode == worker.ModeAnnotation {
				require.Equal(t, res.Written, now.Digest.String())
				require.Equal(t, now.Digest.String(), e.Digest, "the annotated manifest carries the description")
				require.Equal(t, pushed.Digest.String(), e.Replaces)
				require.Equal(t, now.Digest.String(), p.Manifest)
				require.Equal(t, "annotation", p.Stored)
				require.Equal(t, visibleText(photo), m.Annotations[registry.AnnotationText])
			} else {
				require.Equal(t, pushed.Digest, now.Digest)
				require.Equal(t, pushed.Digest.String(), e.Digest)
				require.Empty(t, e.Replaces)
				require.Equal(t, pushed.Digest.String(), p.Manifest)
				require.Equal(t, "referrer "+res.Written, p.Stored)
				require.NotContains(t, m.Annotations, registry.AnnotationText)
				repo, err := s.Client.Repository(s.RegistryHost, "photos/sign")
				require.NoError(t, err)
				refs, err := s.Client.Referrers(ctx, repo, pushed, registry.ArtifactTypeDescription)
				require.NoError(t, err)
				require.Len(t, refs, 1)
				require.Equal(t, visibleText(photo), refs[0].Annotations[registry.AnnotationText])
				rec, err := s.Client.FetchRecord(ctx, repo, refs[0])
				require.NoError(t, err)
				require.Equal(t, visibleText(photo), rec.Photos[0].Text, "description.json has the visible text")
			}

			// Several photos: one event photo each, the visible text per layer.
			a, b := stacktest.JPEG(t, 90, 60, 801), stacktest.PNG(t, 60, 90, 802)
			pair := s.Push(t, "photos/pair", "v1",
				stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: a},
				stacktest.File{Name: "b.png", MediaType: "image/png", Data: b})
			queueJob(t, s, queue.Job{Repository: "photos/pair", Digest: pair.Digest.String(), Tag: "v1"})
			e = waitEvent(t, s, "photos/pair", func(e feed.Event) bool { return e.Repository == "photos/pair" })
			require.Len(t, e.Photos, 2)
			require.Equal(t, []string{"a.jpg", "b.png"}, []string{e.Photos[0].Title, e.Photos[1].Title})
			require.Equal(t, visibleText(a), e.Photos[0].Text)
			require.Equal(t, visibleText(b), e.Photos[1].Text)
			require.Equal(t, "image/png", e.Photos[1].MediaType)
			if mode == worker.ModeAnnotation {
				_, m := s.Manifest(t, "photos/pair", "v1")
				require.Equal(t, visibleText(a), m.Layers[0].Annotations[registry.AnnotationText])
				require.Equal(t, visibleText(b), m.Layers[1].Annotations[registry.AnnotationText])
				require.NotContains(t, m.Annotations, registry.AnnotationText, "several photos: the text is on each layer")
			}

			// A photo without visible text gets no io.regscribe.text.
			s.Model.Answer = modeltest.DescribeByDigest
			plain := s.Push(t, "photos/plain", "latest", stacktest.File{Name: "plain.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 90, 60, 803)})
			queueJob(t, s, queue.Job{Repository: "photos/plain", Digest: plain.Digest.String(), Tag: "latest"})
			e = waitEvent(t, s, "photos/plain", func(e feed.Event) bool { return e.Repository == "photos/plain" })
			require.Empty(t, e.Photos[0].Text)
			if mode == worker.ModeAnnotation {
				_, m := s.Manifest(t, "photos/plain", "latest")
				require.NotContains(t, m.Annotations, registry.AnnotationText)
			}
			s.WaitIdle(t)
			require.Empty(t, s.Model.Problems())
		})
	}
}

// pushAlbum pushes an index of children, tagged.
func pushAlbum(t *testing.T, s *stacktest.Stack, repoName, tag string, children ...ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	raw, err := json.Marshal(idx)
	require.NoError(t, err)
	d, err := oras.TagBytes(context.Background(), s.Repository(t, repoName), ocispec.MediaTypeImageIndex, raw, tag)
	require.NoError(t, err)
	return d
}

// queueJob publishes a job as the notifier (or the gallery) would.
func queueJob(t *testing.T, s *stacktest.Stack, j queue.Job) {
	t.Helper()
	j.Version, j.Registry, j.Source, j.Received = queue.JobVersion, s.RegistryHost, "test", time.Now()
	require.NoError(t, queue.NewPublisher(s.JS).Publish(context.Background(), j))
}

// An album's event is for the index; each photo names its child.
func TestAlbumEventNamesEachChild(t *testing.T) {
	t.Parallel()
	for _, mode := range []worker.Mode{worker.ModeAnnotation, worker.ModeReferrer} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			// go-containerregistry's registry sends no notifications: the
			// only job is the album's.
			s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: mode}})
			a := s.Push(t, "albums/trip", "", stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 60, 40, 810)})
			b := s.Push(t, "albums/trip", "", stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 60, 40, 811)})
			idx := pushAlbum(t, s, "albums/trip", "2026", a, b)
			queueJob(t, s, queue.Job{Repository: "albums/trip", Digest: idx.Digest.String(), Tag: "2026"})

			res := resultOf(t, s, "the album's job", func(r queue.Result) bool { return r.Job.Digest == idx.Digest.String() })
			require.Equal(t, queue.Described, res.Outcome, res.Reason)
			e := waitEvent(t, s, "the album", func(e feed.Event) bool { return e.Repository == "albums/trip" })
			require.Equal(t, feed.JobID(res.JobSeq, 0), e.ID)
			require.Equal(t, []string{"2026"}, e.Tags)
			require.Len(t, e.Photos, 2)
			now, raw, err := oras.FetchBytes(context.Background(), s.Repository(t, "albums/trip"), "2026", oras.DefaultFetchBytesOptions)
			require.NoError(t, err)
			var got ocispec.Index
			require.NoError(t, json.Unmarshal(raw, &got))
			require.Equal(t, now.Digest.String(), e.Digest, "the event is for the index the tag names")
			for i, p := range e.Photos {
				require.Equal(t, got.Manifests[i].Digest.String(), p.Manifest, "photo %d names its child", i)
				if mode == worker.ModeAnnotation {
					require.Equal(t, "annotation", p.Stored)
				} else {
					require.True(t, strings.HasPrefix(p.Stored, "referrer sha256:"), p.Stored)
				}
			}
			if mode == worker.ModeAnnotation {
				require.Equal(t, idx.Digest.String(), e.Replaces)
				require.NotEqual(t, idx.Digest, now.Digest)
			} else {
				require.Equal(t, idx.Digest, now.Digest)
				require.Equal(t, []string{a.Digest.String(), b.Digest.String()}, []string{e.Photos[0].Manifest, e.Photos[1].Manifest})
			}
		})
	}
}

// failingFeed fails the first fail events it is given.
type failingFeed struct {
	*feed.Publisher
	fail atomic.Int32
}

func (f *failingFeed) Publish(ctx context.Context, e feed.Event, id string) (uint64, error) {
	if f.fail.Add(-1) >= 0 {
		return 0, errors.New("description stream unavailable")
	}
	return f.Publisher.Publish(ctx, e, id)
}

func (f *failingFeed) Fill(ctx context.Context, e feed.Event, id string) (bool, error) {
	if f.fail.Add(-1) >= 0 {
		return false, errors.New("description stream unavailable")
	}
	return f.Publisher.Fill(ctx, e, id)
}

// A deletion job ends with a tombstone when the registry no longer has the
// manifest (the registry's own announcement queues it), and is a skip when
// it has it again; neither asks the model.
func TestDeletionJobs(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Worker: worker.Options{Mode: worker.ModeAnnotation}})
	ctx := context.Background()
	pushed := s.Push(t, "photos/gone", "latest", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 813)})
	annotated, _ := s.WaitDescribed(t, "photos/gone", "latest")
	waitEvent(t, s, "the description", func(e feed.Event) bool { return e.Digest == annotated.Digest.String() && e.Kind == feed.Written })
	s.WaitIdle(t)
	calls := len(s.Model.Calls())

	// The annotated manifest is deleted: the registry announces it, the
	// notifier queues the deletion, and search forgets the manifest.
	require.NoError(t, s.Repository(t, "photos/gone").Delete(ctx, annotated))
	res := resultOf(t, s, "the deletion", func(r queue.Result) bool { return r.Job.Deleted && r.Job.Digest == annotated.Digest.String() })
	require.Equal(t, queue.Removed, res.Outcome, res.Reason)
	tomb := waitEvent(t, s, "the tombstone", func(e feed.Event) bool { return e.Digest == annotated.Digest.String() })
	require.Equal(t, feed.Deleted, tomb.Kind, "the tombstone purged the description event it supersedes")
	require.Equal(t, s.RegistryHost, tomb.Registry)
	require.Equal(t, "photos/gone", tomb.Repository)
	require.Equal(t, feed.JobID(res.JobSeq, 0), tomb.ID)

	// The original is still there (pushed again, as far as the job knows).
	queueJob(t, s, queue.Job{Repository: "photos/gone", Digest: pushed.Digest.String(), Deleted: true})
	res = resultOf(t, s, "the stale deletion", func(r queue.Result) bool { return r.Job.Deleted && r.Job.Digest == pushed.Digest.String() })
	require.Equal(t, queue.Skipped, res.Outcome)
	require.Contains(t, res.Reason, "has it again")
	s.WaitIdle(t)
	require.False(t, slices.ContainsFunc(streamEvents(t, s), func(e stored) bool {
		return e.Kind == feed.Deleted && e.Digest == pushed.Digest.String()
	}), "a manifest still there is not removed from search")
	require.Equal(t, calls, len(s.Model.Calls()), "a deletion job never asks the model")

	// A tag deleted on its own (the manifest stays): the notifier queues
	// it, and search takes the tag off the repository.
	s.Push(t, "photos/tagged", "old", stacktest.File{Name: "t.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 814)})
	s.WaitDescribed(t, "photos/tagged", "old")
	s.WaitIdle(t)
	calls = len(s.Model.Calls())
	// A tag that is there (pushed again, as far as the job knows): search
	// keeps it.
	queueJob(t, s, queue.Job{Repository: "photos/tagged", Tag: "old", Deleted: true})
	res = resultOf(t, s, "the stale tag deletion", func(r queue.Result) bool { return r.Job.Deleted && r.Job.Tag == "old" })
	require.Equal(t, queue.Skipped, res.Outcome)
	require.Contains(t, res.Reason, "has it again")
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+s.RegistryHost+"/v2/photos/tagged/manifests/old", nil)
	require.NoError(t, err)
	resp, err := stacktest.UserClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	res = resultOf(t, s, "the tag's deletion", func(r queue.Result) bool {
		return r.Job.Deleted && r.Job.Tag == "old" && r.Outcome != queue.Skipped
	})
	require.Equal(t, queue.Removed, res.Outcome, res.Reason)
	require.Empty(t, res.Job.Digest)
	untag := waitEvent(t, s, "the untagged event", func(e feed.Event) bool { return e.Kind == feed.Untagged && e.Repository == "photos/tagged" })
	require.Equal(t, []string{"old"}, untag.Tags)
	require.Equal(t, "photos/tagged", untag.Repository)
	require.Equal(t, s.RegistryHost, untag.Registry)
	require.Empty(t, untag.Digest)

	require.Equal(t, calls, len(s.Model.Calls()), "a deletion job never asks the model")
}

// TestEventsKeepTheirTagsWhateverTheOrderOfJobs: one push makes two jobs of
// one manifest, one by its tag and one by its digest (a PUT by digest, then
// the tag). The stream keeps one event per manifest and describer, so the
// job by digest, ending last, must not bury the tag the other reported: an
// index rebuilt from the stream would lose it. And a job delivered again by
// its tag after it wrote its annotation but before it published (a worker
// that stopped in between) finds its own write-back and publishes what it
// says there.
func TestEventsKeepTheirTagsWhateverTheOrderOfJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Workers: -1}) // no notifications: the test queues the jobs
	pushed := s.Push(t, "photos/order", "latest", stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 40, 30, 941)})
	job := func(digest, tag string) queue.Job {
		return queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/order", Digest: digest, Tag: tag, Source: "test"}
	}
	pub := queue.NewPublisher(s.JS)
	require.NoError(t, pub.Publish(ctx, job(pushed.Digest.String(), "latest")))
	require.NoError(t, pub.Publish(ctx, job(pushed.Digest.String(), "")))
	w := worker.New(s.Client, s.Describer, s.Memory, worker.Options{Mode: worker.ModeAnnotation, Concurrency: 1,
		Feed: feed.NewPublisher(s.JS), Reporter: queue.NewReporter(s.JS), Ledger: s.Ledger, Locker: s.Leases, Logger: stacktest.Logger(t)})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx, s.Consumer) }()
	t.Cleanup(func() { cancel(); <-done })
	s.WaitIdle(t)
	described, _ := s.Manifest(t, "photos/order", "latest")
	require.NotEqual(t, pushed.Digest, described.Digest, "annotated")
	e := waitEvent(t, s, "the description", func(e feed.Event) bool { return e.Digest == described.Digest.String() })
	require.Equal(t, []string{"latest"}, e.Tags, "the job by digest, ending last, left the tag on the stream")

	// The job ended before it published: its event is gone from the
	// stream; delivered again by its tag (a tag-only notification), it
	// finds its own write-back there.
	st, err := s.JS.Stream(ctx, feed.Stream)
	require.NoError(t, err)
	require.NoError(t, st.Purge(ctx))
	require.NoError(t, pub.Publish(ctx, job("", "latest")))
	s.WaitIdle(t)
	e = waitEvent(t, s, "the description found again", func(e feed.Event) bool { return e.Digest == described.Digest.String() })
	require.Equal(t, feed.Found, e.Kind)
	require.Equal(t, []string{"latest"}, e.Tags)
	require.Len(t, e.Photos, 1)
	require.Contains(t, e.Photos[0].Description, "A test photo")
}
