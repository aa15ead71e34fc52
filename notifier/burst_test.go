package notifier_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

// statusCounter counts the notifier's 503 answers.
type statusCounter struct {
	http.ResponseWriter
	status int
}

func (s *statusCounter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusCounter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// A burst of photo pushes to a real CNCF Distribution registry becomes one
// job per manifest push, none lost and none twice, although the NATS server
// is restarted in the middle: the notifier answers 503 while it is away and
// the registry's retries deliver the rest.
func TestBurstSurvivesNATSRestart(t *testing.T) {
	t.Parallel()
	const photos = 200
	ctx := context.Background()

	// NATS on file storage and a fixed address, so it can come back as the
	// same server with the same stream.
	storeDir := t.TempDir()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: storeDir, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	natsAddr := ns.Addr().String()
	t.Cleanup(func() { ns.Stop() })
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = queue.EnsureStream(ctx, js, queue.StreamOptions{})
	require.NoError(t, err)

	var unavailable atomic.Int64
	reg := startNotified(t, js, time.Second, func(n http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := &statusCounter{ResponseWriter: w}
			n.ServeHTTP(sc, r)
			if sc.status == http.StatusServiceUnavailable {
				unavailable.Add(1)
			}
		})
	})

	// Push the photos from four clients at once.
	var pushed atomic.Int64
	digests := make([]string, photos)
	errs := make(chan error, photos)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				d, err := pushPhoto(ctx, reg.Addr(), i)
				if err != nil {
					errs <- fmt.Errorf("photo %d: %w", i, err)
					continue
				}
				digests[i] = d
				pushed.Add(1)
			}
		})
	}
	go func() {
		for i := range photos {
			next <- i
		}
		close(next)
	}()

	// Restart NATS after about 80 pushes, once the notifier has refused at
	// least one notification for want of it.
	require.Eventually(t, func() bool { return pushed.Load() >= 80 }, 60*time.Second, 5*time.Millisecond, "pushes stalled")
	ns.Stop()
	require.Eventually(t, func() bool { return unavailable.Load() > 0 }, 60*time.Second, 10*time.Millisecond,
		"no notification was answered 503 while NATS was down")
	ns, err = embedded.StartNATS(embedded.NATSOptions{StoreDir: storeDir, Listen: natsAddr})
	require.NoError(t, err)

	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, photos, pushed.Load())

	// oras pushes each manifest by digest, then tags it (a second PUT):
	// Distribution announces both, so each photo makes two jobs.
	type key struct{ repository, digest, tag string }
	want := map[key]bool{}
	for i, d := range digests {
		want[key{"photos/burst", d, ""}] = true
		want[key{"photos/burst", d, fmt.Sprintf("p%03d", i)}] = true
	}
	var stored []queue.Job
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, queue.Stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.State.Msgs < uint64(len(want)) {
			return false
		}
		stored = nil
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				return false
			}
			j, err := queue.ParseJob(m.Data)
			if err != nil {
				return false
			}
			stored = append(stored, j)
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "the stream never held a job for every push")

	got := map[key]int{}
	distinctDigests := map[string]bool{}
	for _, j := range stored {
		require.Equal(t, reg.Addr(), j.Registry)
		require.Equal(t, notifier.SourceDistribution, j.Source)
		got[key{j.Repository, j.Digest, j.Tag}]++
		distinctDigests[j.Digest] = true
	}
	for k, count := range got {
		require.True(t, want[k], "unexpected job %v", k)
		require.Equal(t, 1, count, "job %v queued %d times", k, count)
	}
	require.Len(t, got, len(want), "every manifest push made a job")
	require.Len(t, stored, len(want), "no duplicates")
	require.Len(t, distinctDigests, photos)
	t.Logf("%d photos, %d jobs, %d notifications answered 503 during the restart", photos, len(stored), unavailable.Load())
}

// startNotified starts a CNCF Distribution registry whose notifications
// reach, through wrap, a notifier that queues on js (publishing for at most
// publishTimeout). Both stop when the test ends.
func startNotified(t testing.TB, js jetstream.JetStream, publishTimeout time.Duration, wrap func(http.Handler) http.Handler) *embedded.Registry {
	t.Helper()
	// The notifier's address must exist before the registry that notifies it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	const notifyToken = "registry-token"
	reg, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{
		Listen: "127.0.0.1:0", NotifyURL: "http://" + ln.Addr().String() + "/v1/events", NotifyToken: notifyToken,
	})
	require.NoError(t, err)
	n, err := notifier.New(queue.NewPublisher(js), notifier.Options{
		Token: notifyToken, Registry: reg.Addr(), PublishTimeout: publishTimeout, Logger: testLogger(),
	})
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: wrap(n)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Stop(sctx)
		_ = srv.Shutdown(sctx)
	})
	return reg
}

// pushPhoto pushes photo i as `oras push` does (an image layer, an OCI 1.1
// manifest pushed by digest) and tags it p<i>.
func pushPhoto(ctx context.Context, registryAddr string, i int) (string, error) {
	repo, err := remote.NewRepository(registryAddr + "/photos/burst")
	if err != nil {
		return "", err
	}
	repo.PlainHTTP = true
	repo.Client = stacktest.UserClient // the registry closes http.DefaultTransport's idle connections
	data := fmt.Appendf(nil, "\xff\xd8\xff\xe0 photo %d \xff\xd9", i)
	layer := content.NewDescriptorFromBytes("image/jpeg", data)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("photo-%03d.jpg", i)}
	if err := repo.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		return "", err
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2026-11-27T20:41:07Z"},
	})
	if err != nil {
		return "", err
	}
	if err := repo.Tag(ctx, desc, fmt.Sprintf("p%03d", i)); err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}
