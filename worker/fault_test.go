package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// Fault tests: each is bounded in time and runs on loopback only.

func TestRegistryOutageOf20Seconds(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	s := stacktest.Start(t, stacktest.Options{
		MaxAttempts: 8,
		Worker:      worker.Options{Backoff: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		RegistryProxy: func(backend http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if down.Load() {
					http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}`, http.StatusServiceUnavailable)
					return
				}
				backend.ServeHTTP(w, r)
			})
		},
	})
	const n = 10
	for i := range n {
		s.Push(t, "photos/outage", fmt.Sprint(i), stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, uint64(200+i))})
	}
	time.AfterFunc(20*time.Second, func() { down.Store(false) })
	for i := range n {
		require.Eventually(t, func() bool {
			_, m := s.Manifest(t, "photos/outage", fmt.Sprint(i))
			return m.Annotations[registry.AnnotationDescription] != ""
		}, 90*time.Second, 100*time.Millisecond)
	}
	s.WaitIdle(t)
	dead, err := queue.DeadLetters(context.Background(), s.JS)
	require.NoError(t, err)
	require.Empty(t, dead)
	require.Equal(t, n, len(s.Model.Calls()))
}

func TestFailingModelDeadLettersThenRetry(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	s := stacktest.Start(t, stacktest.Options{MaxAttempts: 3, Worker: worker.Options{Backoff: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}}})
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply {
		if healthy.Load() {
			return modeltest.DescribeByDigest(c)
		}
		return modeltest.Reply{Status: http.StatusInternalServerError, Content: "llama runner process has terminated"}
	}
	const n = 3
	for i := range n {
		s.Push(t, "photos/flaky", fmt.Sprint(i), stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, uint64(300+i))})
	}
	ctx := context.Background()
	var dead []queue.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		dead, err = queue.DeadLetters(ctx, s.JS)
		return err == nil && len(dead) == 2*n // each push: one job by digest, one by tag
	}, 60*time.Second, 50*time.Millisecond)
	for _, d := range dead {
		require.Equal(t, 3, d.Attempts)
		require.Contains(t, d.Error, "gave up after 3 attempts")
		require.Contains(t, d.Error, "llama runner process has terminated", "the model's message is kept")
	}
	require.GreaterOrEqual(t, len(s.Model.Calls()), 3*n, "every job was tried three times")

	healthy.Store(true)
	for _, d := range dead {
		_, err := queue.RetryDead(ctx, s.JS, d.Seq)
		require.NoError(t, err)
	}
	for i := range n {
		s.WaitDescribed(t, "photos/flaky", fmt.Sprint(i))
	}
	s.WaitIdle(t)
	dead, err := queue.DeadLetters(ctx, s.JS)
	require.NoError(t, err)
	require.Empty(t, dead)
}

func TestNATSRestartLosesNoJob(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{MaxAttempts: 10})
	const n = 30
	for i := range n {
		if i == 10 {
			s.StopNode(0)
		}
		if i == 20 {
			s.StartNode(t, 0)
		}
		s.Push(t, "photos/restart", fmt.Sprint(i), stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 48, 32, uint64(400+i))})
	}
	for i := range n {
		require.Eventually(t, func() bool {
			_, m := s.Manifest(t, "photos/restart", fmt.Sprint(i))
			return m.Annotations[registry.AnnotationDescription] != ""
		}, 90*time.Second, 100*time.Millisecond, "photo %d", i)
	}
	s.WaitIdle(t)
	// A job whose description could not be remembered while NATS was down
	// is retried, and may meet the model again: what counts is that every
	// photo was described and nothing became a dead letter.
	seen := map[string]bool{}
	for _, c := range s.Model.Calls() {
		seen[modeltest.Digest(c.Images[0])] = true
	}
	require.Len(t, seen, n)
	dead, err := queue.DeadLetters(context.Background(), s.JS)
	require.NoError(t, err)
	require.Empty(t, dead)
}

func TestClusterNodeLossDescribesEachPhotoOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("500 photos on a 3-node cluster")
	}
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Nodes: 3, Workers: 2, MaxAttempts: 10, Worker: worker.Options{Concurrency: 8}})
	const n = 500
	pushed := map[string]string{} // pushed digest -> tag
	for i := range n {
		if i == 150 {
			s.StopNode(1)
		}
		d := s.Push(t, "photos/cluster", fmt.Sprint(i), stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 16, 16, uint64(1000+i))})
		pushed[d.Digest.String()] = fmt.Sprint(i)
	}
	shown := map[string]string{} // tag -> the described manifest it shows
	for i := range n {
		require.Eventually(t, func() bool {
			desc, m := s.Manifest(t, "photos/cluster", fmt.Sprint(i))
			shown[fmt.Sprint(i)] = desc.Digest.String()
			return m.Annotations[registry.AnnotationDescription] != ""
		}, 120*time.Second, 50*time.Millisecond, "photo %d", i)
	}
	s.WaitIdle(t)
	// Each push makes two jobs (by digest, then by tag) that two workers
	// may take at once, and a lost node redelivers some. The description
	// memory is first-writer-wins and the write is a function of the
	// description, so every job of a photo writes the manifest its tag
	// shows: one description per photo.
	described := 0
	for _, r := range results(t, s) {
		if r.Outcome != queue.Described || r.Job.Repository != "photos/cluster" {
			continue
		}
		described++
		tag, ok := pushed[r.Job.Digest]
		require.True(t, ok, "a described job for a manifest nobody pushed: %s", r.Job.Digest)
		require.Equal(t, shown[tag], r.Written, "photo %s: a job wrote another description than its tag shows", tag)
	}
	require.GreaterOrEqual(t, described, n)
	seen := map[string]bool{}
	for _, c := range s.Model.Calls() {
		seen[modeltest.Digest(c.Images[0])] = true
	}
	require.Len(t, seen, n, "every photo reached the model")
}

// results reads every job result published so far.
func results(t *testing.T, s *stacktest.Stack) []queue.Result {
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, queue.ResultStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	var out []queue.Result
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		var r queue.Result
		require.NoError(t, json.Unmarshal(m.Data, &r))
		out = append(out, r)
	}
	return out
}

func TestBadBlobsAreDeadLetters(t *testing.T) {
	t.Parallel()
	var corrupt atomic.Value // digest whose bytes the proxy flips
	corrupt.Store("")
	s := stacktest.Start(t, stacktest.Options{MaxAttempts: 2, Worker: worker.Options{Backoff: []time.Duration{100 * time.Millisecond}},
		RegistryProxy: func(backend http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if d := corrupt.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
					rec := &capture{header: http.Header{}}
					backend.ServeHTTP(rec, r)
					body := rec.body.Bytes()
					if len(body) > 100 {
						body[100] ^= 0xFF
					}
					for k, v := range rec.header {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.status)
					_, _ = w.Write(body)
					return
				}
				backend.ServeHTTP(w, r)
			})
		}})
	ctx := context.Background()

	// A digest mismatch: the registry serves bytes that are not the blob.
	mismatch := stacktest.JPEG(t, 64, 48, 500)
	corrupt.Store(modeltest.Digest(mismatch))
	s.Push(t, "photos/mismatch", "latest", stacktest.File{Name: "m.jpg", MediaType: "image/jpeg", Data: mismatch})

	// A truncated blob: the manifest says it is longer than it is.
	repo := s.Repository(t, "photos/truncated")
	short := stacktest.JPEG(t, 64, 48, 501)
	layer := content.NewDescriptorFromBytes("image/jpeg", short)
	require.NoError(t, repo.Push(ctx, layer, bytes.NewReader(short)))
	layer.Size += 1000
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.photo", oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, desc, "latest"))

	// A corrupt JPEG: a valid header, then nothing.
	good := stacktest.JPEG(t, 64, 48, 502)
	s.Push(t, "photos/corrupt", "latest", stacktest.File{Name: "c.jpg", MediaType: "image/jpeg", Data: good[:len(good)/3]})

	// And the worker goes on.
	s.Push(t, "photos/fine", "latest", stacktest.File{Name: "f.jpg", MediaType: "image/jpeg", Data: good})
	s.WaitDescribed(t, "photos/fine", "latest")

	reasons := map[string]string{}
	require.Eventually(t, func() bool {
		dead, err := queue.DeadLetters(ctx, s.JS)
		if err != nil {
			return false
		}
		for _, d := range dead {
			reasons[d.Job.Repository] = d.Error
		}
		return len(reasons) == 3
	}, 60*time.Second, 50*time.Millisecond, "dead letters: %v", reasons)
	require.Contains(t, reasons["photos/mismatch"], "digest")
	require.Contains(t, reasons["photos/truncated"], "photos/truncated")
	require.Contains(t, reasons["photos/corrupt"], "corrupt")
	for _, c := range s.Model.Calls() {
		require.Equal(t, good, c.Images[0], "only the good photo reaches the model")
	}
}

// capture is an http.ResponseWriter that keeps what it is given.
type capture struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) WriteHeader(s int)           { c.status = s }
func (c *capture) Write(b []byte) (int, error) { return c.body.Write(b) }
