package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
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
