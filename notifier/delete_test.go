package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	godigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

// deleteEvent is what the test reads of a delete event as the registry sent it.
type deleteEvent struct {
	digest, tag, userAgent string
}

// A real CNCF Distribution registry announces deletions: a manifest deleted
// by digest makes one job with Deleted set for that digest; the tag-only
// events it sends for the manifest's tags, and a tag deleted on its own,
// make one job with Deleted set naming the tag and no digest; regscribe's
// own deletions (pruned referrers, old fallback indexes) make none.
func TestDistributionDeletionMakesDeletedJob(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	js := stacktest.JetStream(t)
	_, err := queue.EnsureStream(ctx, js, queue.StreamOptions{})
	require.NoError(t, err)
	var (
		mu      sync.Mutex
		deletes []deleteEvent
	)
	reg := startNotified(t, js, 5*time.Second, func(n http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var env struct {
				Events []struct {
					Action string `json:"action"`
					Target struct {
						Digest string `json:"digest"`
						Tag    string `json:"tag"`
					} `json:"target"`
					Request struct {
						UserAgent string `json:"useragent"`
					} `json:"request"`
				} `json:"events"`
			}
			if json.Unmarshal(body, &env) == nil {
				mu.Lock()
				for _, e := range env.Events {
					if e.Action == "delete" {
						deletes = append(deletes, deleteEvent{e.Target.Digest, e.Target.Tag, e.Request.UserAgent})
					}
				}
				mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			n.ServeHTTP(w, r)
		})
	})

	user := repository(t, reg.Addr(), &auth.Client{
		Client: stacktest.UserClient.Client,
		Header: http.Header{"User-Agent": {"oras/1.3.6"}},
	})
	regscribe := repository(t, reg.Addr(), &auth.Client{
		Client: stacktest.UserClient.Client,
		Header: http.Header{"User-Agent": {"regscribe/test"}},
	})
	manifest := func(i int) ocispec.Descriptor {
		d, err := pushPhoto(ctx, reg.Addr(), i)
		require.NoError(t, err)
		desc, err := user.Resolve(ctx, d)
		require.NoError(t, err)
		require.Equal(t, godigest.Digest(d), desc.Digest)
		return desc
	}

	// A person deletes photo 0 by digest (it is tagged p000).
	gone := manifest(0)
	require.NoError(t, user.Delete(ctx, gone))
	// regscribe deletes photo 1 (as if it were an old referrer).
	own := manifest(1)
	require.NoError(t, regscribe.Delete(ctx, own))
	// A person deletes the tag of photo 2 only; the manifest stays.
	kept := manifest(2)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://"+reg.Addr()+"/v2/photos/burst/manifests/p002", nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", "oras/1.3.6")
	resp, err := stacktest.UserClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	// Then deletes photo 3 by digest: the registry delivers its events in
	// order, so once its job is queued, every earlier event was answered.
	last := manifest(3)
	require.NoError(t, user.Delete(ctx, last))

	var all []queue.Job
	require.Eventually(t, func() bool {
		all = deletedJobs(ctx, js)
		return slices.ContainsFunc(all, func(j queue.Job) bool { return j.Tag == "p003" })
	}, 30*time.Second, 50*time.Millisecond, "no deletion job for the tag of the last deleted manifest")

	var deleted []queue.Job
	var tags []string
	for _, j := range all {
		if j.Digest != "" {
			deleted = append(deleted, j)
			continue
		}
		tags = append(tags, j.Tag)
		require.NoError(t, j.Validate())
	}
	require.Equal(t, []string{"p000", "p002", "p003"}, tags, "one job per tag deleted, on its own or with its manifest; none for regscribe's own")
	require.Len(t, deleted, 2, "one job per manifest a person deleted by digest: %+v", deleted)
	for i, want := range []ocispec.Descriptor{gone, last} {
		j := deleted[i]
		require.Equal(t, want.Digest.String(), j.Digest)
		require.Equal(t, reg.Addr(), j.Registry, "the registry comes from configuration")
		require.Equal(t, "photos/burst", j.Repository)
		require.Empty(t, j.Tag, "Distribution's deletion by digest names no tag")
		require.Equal(t, notifier.FormatDistribution, j.Source)
		require.Regexp(t, `^id:.+`, j.Event, "Distribution's event id identifies the announcement")
		require.NoError(t, j.Validate())
	}

	// What Distribution sent: the digest alone, then each tag alone.
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, deletes, deleteEvent{digest: gone.Digest.String(), userAgent: "oras/1.3.6"})
	require.Contains(t, deletes, deleteEvent{tag: "p000", userAgent: "oras/1.3.6"})
	require.Contains(t, deletes, deleteEvent{digest: own.Digest.String(), userAgent: "regscribe/test"})
	require.Contains(t, deletes, deleteEvent{tag: "p002", userAgent: "oras/1.3.6"})
	_, err = user.Resolve(ctx, kept.Digest.String())
	require.NoError(t, err, "deleting a tag leaves its manifest")
}

func repository(t *testing.T, host string, client *auth.Client) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(host + "/photos/burst")
	require.NoError(t, err)
	r.PlainHTTP = true
	r.Client = client
	return r
}

// deletedJobs returns the jobs on the stream with Deleted set, oldest first.
func deletedJobs(ctx context.Context, js jetstream.JetStream) []queue.Job {
	s, err := js.Stream(ctx, queue.Stream)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil
	}
	var out []queue.Job
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if j, err := queue.ParseJob(m.Data); err == nil && j.Deleted {
			out = append(out, j)
		}
	}
	return out
}
