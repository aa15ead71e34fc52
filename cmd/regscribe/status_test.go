package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/reconcile"
	regclient "github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestStatus: `regscribe status` shows a running queue as a table and as
// JSON, with the same numbers.
func TestStatus(t *testing.T) {
	t.Parallel()
	ns, js := startQueue(t)
	ctx := context.Background()
	c, err := queue.EnsureConsumer(ctx, js, queue.ConsumerOptions{})
	require.NoError(t, err)
	job := queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: "photos/a",
		Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Source: "distribution", Received: time.Now()}
	other := job
	other.Repository = "photos/b"
	require.NoError(t, queue.NewPublisher(js).Publish(ctx, job, other))
	b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for range b.Messages() { // held: in flight
	}
	require.NoError(t, queue.NewReporter(js).Dead(ctx, queue.DeadLetter{Job: job, Error: "test", JobSeq: 99}))

	run := func(args ...string) []byte {
		cmd := exec.Command(binary, append([]string{"status"}, args...)...)
		cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL="+ns.ClientURL())
		out, err := cmd.Output()
		require.NoError(t, err, "%s", out)
		return out
	}
	var st queue.Status
	require.NoError(t, json.Unmarshal(run("--json"), &st))
	require.Equal(t, queue.Status{Messages: 2, Queued: 1, InFlight: 1, Dead: 1, Consumers: st.Consumers}, st)
	require.Len(t, st.Consumers, 1)
	require.Equal(t, -1, st.Consumers[0].MaxDeliver)

	table := string(run())
	for _, want := range []string{"queued               1", "in flight            1", "waiting for a retry  0", "dead letters         1", "stranded             0", "delivery limit none"} {
		require.Contains(t, table, want)
	}

	cmd := exec.Command(binary, "status", "extra")
	cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL="+ns.ClientURL())
	require.Error(t, cmd.Run())
}

// TestStatusShowsLastSweep: `regscribe status` names the last reconcile
// sweep of each registry and what it caught, or that it failed and why, in
// its table and in its JSON record (--format json and --json).
func TestStatusShowsLastSweep(t *testing.T) {
	t.Parallel()
	ns, js := startQueue(t)
	ctx := context.Background()
	cfg := config.Config{NATSURL: ns.ClientURL()}
	text := func() string {
		t.Helper()
		var out, errOut bytes.Buffer
		require.Zero(t, status(ctx, cfg, formatText, &out, &errOut), "%s", errOut.String())
		return out.String()
	}
	type record struct {
		queue.Status
		Sweeps []struct {
			reconcile.Sweep
			TookSeconds *float64 `json:"tookSeconds"`
		} `json:"sweeps"`
	}
	raw := func(flags ...string) []byte {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"status"}, flags...)...)
		cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL="+ns.ClientURL())
		out, err := cmd.Output()
		require.NoError(t, err, "%s", out)
		return out
	}
	jsonRecord := func(flags ...string) record {
		t.Helper()
		out := raw(flags...)
		var rec record
		require.NoError(t, json.Unmarshal(out, &rec), "%s", out)
		return rec
	}
	require.Contains(t, text(), "reconcile: no sweep yet\n")
	require.Contains(t, string(raw("--json")), `"sweeps": []`, "no sweep: an empty list")

	reg, err := embedded.StartRegistry(ctx, embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Stop(context.Background()) })
	repo, err := remote.NewRepository(reg.Addr() + "/photos/a")
	require.NoError(t, err)
	repo.PlainHTTP = true
	pushPhoto(t, repo, "latest", stacktest.JPEG(t, 8, 8, 1))

	client, err := regclient.New([]regclient.Endpoint{{Host: reg.Addr(), PlainHTTP: true}}, regclient.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	rec, err := reconcile.New(ctx, js, client, reconcile.Options{Model: "ollama/m"})
	require.NoError(t, err)
	_, err = rec.Sweep(ctx, reg.Addr())
	require.NoError(t, err)
	out := text()
	require.Contains(t, out, "last sweep of "+reg.Addr()+": ")
	require.Contains(t, out, "1 tags, 0 unchanged, 1 manifests checked, 1 photos caught and queued")
	require.NotContains(t, out, "FAILED")
	for _, flags := range [][]string{{"--json"}, {"--format", "json"}} {
		got := jsonRecord(flags...)
		require.Len(t, got.Sweeps, 1, "%v", flags)
		sw := got.Sweeps[0]
		require.Equal(t, reg.Addr(), sw.Registry)
		require.False(t, sw.Started.IsZero())
		require.NotNil(t, sw.TookSeconds, "tookSeconds")
		require.InDelta(t, sw.Took().Seconds(), *sw.TookSeconds, 1e-6)
		require.Equal(t, 1, sw.Counts.Tags)
		require.Equal(t, 1, sw.Counts.Queued)
		require.Empty(t, sw.Error)
		require.Zero(t, sw.Failures)
		require.Equal(t, uint64(1), got.Queued, "the queue's numbers are still there")
	}

	// The registry goes away: the next sweep fails, and status says so.
	down, err := regclient.New([]regclient.Endpoint{{Host: reg.Addr(), PlainHTTP: true}}, regclient.Options{
		Credentials: credentials.NewMemoryStore(),
		HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("connection refused")
		})},
	})
	require.NoError(t, err)
	rec, err = reconcile.New(ctx, js, down, reconcile.Options{Model: "ollama/m"})
	require.NoError(t, err)
	for range 2 {
		_, err = rec.Sweep(ctx, reg.Addr())
		require.Error(t, err)
	}
	out = text()
	require.Contains(t, out, "last sweep of "+reg.Addr()+": ")
	require.Contains(t, out, "FAILED (2 in a row")
	require.Contains(t, out, "connection refused")
	got := jsonRecord("--json")
	require.Len(t, got.Sweeps, 1)
	require.Contains(t, got.Sweeps[0].Error, "connection refused")
	require.Equal(t, 2, got.Sweeps[0].Failures)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStatusShowsModelOutage: with the model unreachable, `regscribe
// status` says so first, since when, why and how many jobs wait, in its
// table and in its JSON record; once the workers reach the model again,
// the line is gone.
func TestStatusShowsModelOutage(t *testing.T) {
	t.Parallel()
	dead := stacktest.DeadAddress(t)
	s := stacktest.Start(t, stacktest.Options{OllamaURL: "http://" + dead})
	s.Push(t, "photos/waiting", "latest", stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 1)})
	ctx := context.Background()
	cfg := config.Config{NATSURL: s.ClientURLs()}
	text := func() string {
		var out, errOut bytes.Buffer
		require.Zero(t, status(ctx, cfg, formatText, &out, &errOut), "%s", errOut.String())
		return out.String()
	}
	var table string
	require.Eventually(t, func() bool {
		table = text()
		return strings.Contains(table, "unreachable")
	}, 30*time.Second, 100*time.Millisecond, "no outage in `regscribe status`")
	first := strings.SplitN(table, "\n", 2)[0]
	require.Regexp(t, `^model ollama/`+regexp.QuoteMeta(stacktest.Model)+` unreachable since \d\d:\d\d UTC, \d+ \w+ \(for \w+\); [12] jobs? waits?: .*`+regexp.QuoteMeta(dead)+`.*connection refused`, first)

	var out, errOut bytes.Buffer
	require.Zero(t, status(ctx, cfg, formatJSON, &out, &errOut), "%s", errOut.String())
	var rec struct {
		ModelOutages []struct {
			Model       string    `json:"model"`
			Since       time.Time `json:"since"`
			Cause       string    `json:"cause"`
			JobsWaiting uint64    `json:"jobsWaiting"`
		} `json:"modelOutages"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rec), "%s", out.String())
	require.Len(t, rec.ModelOutages, 1)
	o := rec.ModelOutages[0]
	require.Equal(t, "ollama/"+stacktest.Model, o.Model)
	require.WithinDuration(t, time.Now(), o.Since, time.Minute)
	require.Contains(t, o.Cause, "connection refused")
	require.NotZero(t, o.JobsWaiting)

	// The model starts where it was looked for: the workers find it, and
	// the outage is over.
	model := modeltest.NewUnstartedOllama(stacktest.Model)
	var err error
	model.Listener, err = net.Listen("tcp", dead)
	require.NoError(t, err)
	model.Start()
	t.Cleanup(model.Close)
	require.Eventually(t, func() bool { return !strings.Contains(text(), "unreachable") }, 60*time.Second, 200*time.Millisecond,
		"the outage outlived the model's return")
}
