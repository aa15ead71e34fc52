package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

const (
	token    = "s3cret-token"
	registry = "127.0.0.1:5000"
	digest   = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	ociMT    = "application/vnd.oci.image.manifest.v1+json"
)

type env struct {
	nats   *embedded.NATS
	js     jetstream.JetStream
	server *httptest.Server
}

// now is the clock of every notifier under test.
var now = time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)

func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, notifier.Options{Token: token, Registry: registry})
}

// startWith starts NATS (file storage), the job stream and a notifier with
// opts (clock and publish timeout set for tests) over httptest.
func startWith(t testing.TB, opts notifier.Options) *env {
	t.Helper()
	return startWithJS(t, func(jetstream.JetStream) notifier.Options { return opts })
}

// startWithJS is startWith with options made once NATS runs (parts on its
// JetStream).
func startWithJS(t testing.TB, options func(jetstream.JetStream) notifier.Options) *env {
	t.Helper()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(0))
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = queue.EnsureStream(context.Background(), js, queue.StreamOptions{})
	require.NoError(t, err)
	opts := options(js)
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	n, err := notifier.New(queue.NewPublisher(js), opts)
	require.NoError(t, err)
	srv := httptest.NewServer(n)
	t.Cleanup(func() { srv.Close(); nc.Close(); ns.Stop() })
	return &env{nats: ns, js: js, server: srv}
}

// testLogger logs to stderr with -v, and nowhere otherwise.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (e *env) post(t *testing.T, auth, contentType, body string) (int, notifier.Reply) {
	t.Helper()
	return e.postTo(t, "/v1/events", http.Header{"Authorization": {auth}, "Content-Type": {contentType}}, body)
}

// postTo posts body to path with the given headers (empty values are not sent).
func (e *env) postTo(t testing.TB, path string, h http.Header, body string) (int, notifier.Reply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.server.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, vs := range h {
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var rep notifier.Reply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	return resp.StatusCode, rep
}

// queued returns the jobs on the stream.
func (e *env) queued(t testing.TB) []queue.Job {
	t.Helper()
	return stacktest.Jobs(t, e.js)
}

func event(action, mediaType, repo, dgst, tag string) string {
	return fmt.Sprintf(`{"id":"e1","timestamp":"2026-11-27T20:00:00Z","action":%q,"target":{"mediaType":%q,"digest":%q,"size":512,"length":512,"repository":%q,"url":"http://evil.example/v2/%s/manifests/%s","tag":%q},"request":{"id":"r1","addr":"10.0.0.1:1234","host":"evil.example","method":"PUT","useragent":"oras/1.3.6"},"actor":{},"source":{"addr":"reg:5000"}}`,
		action, mediaType, dgst, repo, repo, dgst, tag)
}

func envelope(events ...string) string { return `{"events":[` + strings.Join(events, ",") + `]}` }

func TestNotifications(t *testing.T) {
	t.Parallel()
	push := event("push", ociMT, "photos/pineapple", digest, "latest")
	cases := []struct {
		name        string
		auth        string
		contentType string
		body        string
		status      int
		queued      int
		errContains string
	}{
		{"manifest push", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(push), 200, 1, ""},
		{"lower-case scheme", "bearer " + token, notifier.MediaTypeDistributionEvents, envelope(push), 200, 1, ""},
		{"same push twice in one envelope", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(push, push), 200, 1, ""},
		{"ACR single event", "Bearer " + token, "application/json", push, 200, 1, ""},
		{"Docker image", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", "application/vnd.docker.distribution.manifest.v2+json", "library/alpine", digest, "3.21")), 200, 0, ""},
		{"Docker manifest list", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", "application/vnd.docker.distribution.manifest.list.v2+json", "library/alpine", digest, "3.21")), 200, 0, ""},
		{"blob push", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", "application/octet-stream", "photos/pineapple", digest, "")), 200, 0, ""},
		{"pull", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("pull", ociMT, "photos/pineapple", digest, "latest")), 200, 0, ""},
		{"mount", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("mount", ociMT, "photos/pineapple", digest, "")), 200, 0, ""},
		{"tag delete", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("delete", "", "photos/pineapple", "", "latest")), 200, 1, ""},
		{"fallback index tag", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", "application/vnd.oci.image.index.v1+json", "photos/pineapple", digest, "sha256-"+strings.Repeat("a", 64))), 200, 0, ""},
		{"no token", "", notifier.MediaTypeDistributionEvents, envelope(push), 401, 0, "token"},
		{"wrong token", "Bearer nope", notifier.MediaTypeDistributionEvents, envelope(push), 401, 0, "token"},
		{"basic auth", "Basic " + token, notifier.MediaTypeDistributionEvents, envelope(push), 401, 0, "token"},
		{"not JSON", "Bearer " + token, notifier.MediaTypeDistributionEvents, "{events:", 400, 0, "not a notification envelope"},
		{"wrong content type", "Bearer " + token, "text/plain", envelope(push), 400, 0, "content type"},
		{"no events", "Bearer " + token, notifier.MediaTypeDistributionEvents, `{"hello":1}`, 400, 0, "no \"events\""},
		{"bad digest", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", ociMT, "photos/x", "../../etc", "")), 400, 0, "not a digest"},
		{"bad repository", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(event("push", ociMT, "Photos/../x", digest, "")), 400, 0, "not a valid name"},
		{"too large", "Bearer " + token, notifier.MediaTypeDistributionEvents, envelope(push) + strings.Repeat(" ", notifier.DefaultMaxBody), 413, 0, "bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t)
			status, rep := e.post(t, tc.auth, tc.contentType, tc.body)
			require.Equal(t, tc.status, status, rep.Error)
			require.Contains(t, rep.Error, tc.errContains)
			jobs := e.queued(t)
			require.Len(t, jobs, tc.queued)
			if tc.queued == 1 {
				j := jobs[0]
				require.Equal(t, registry, j.Registry, "the registry comes from configuration, not the event")
				require.Equal(t, "photos/pineapple", j.Repository)
				if j.Deleted {
					require.Empty(t, j.Digest, "a tag deleted on its own: the job names the tag")
				} else {
					require.Equal(t, digest, j.Digest)
				}
				require.Equal(t, "latest", j.Tag)
				require.Equal(t, notifier.SourceDistribution, j.Source)
				require.Equal(t, queue.JobVersion, j.Version)
				require.Equal(t, 1, rep.Queued)
			}
		})
	}
}

func TestRepeatedNotificationIsQueuedOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	body := envelope(event("push", ociMT, "photos/pineapple", digest, "latest"))
	for range 3 {
		status, _ := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, body)
		require.Equal(t, 200, status)
	}
	require.Len(t, e.queued(t), 1)
}

// A manifest's deletion is a job of its own beside its push, announced in
// the same notification or not, and a deletion delivered again is queued once.
func TestDeletionIsQueuedOnceBesideThePush(t *testing.T) {
	t.Parallel()
	e := start(t)
	push := event("push", ociMT, "photos/pineapple", digest, "")
	del := strings.Replace(event("delete", "", "photos/pineapple", digest, ""), `"id":"e1"`, `"id":"e2"`, 1)
	for range 2 {
		status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(push, del))
		require.Equal(t, 200, status, rep.Error)
		require.Equal(t, 2, rep.Queued)
	}
	jobs := e.queued(t)
	require.Len(t, jobs, 2)
	require.False(t, jobs[0].Deleted)
	require.True(t, jobs[1].Deleted)
	require.Equal(t, digest, jobs[1].Digest)
	require.Equal(t, "id:e2", jobs[1].Event)
}

func TestQueueDownAnswers503(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.nats.Stop()
	status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(event("push", ociMT, "photos/pineapple", digest, "latest")))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.NotContains(t, rep.Error, "nats", "no internals in replies")
}
