package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := stacktest.JetStream(t)
	_, err := queue.EnsureStream(context.Background(), js, queue.StreamOptions{})
	require.NoError(t, err)
	return js
}

func testJob(repo string) queue.Job {
	return queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: repo,
		Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Source: "distribution", Received: time.Now()}
}

// A job message that an earlier version's consumer stopped delivering at
// its MaxDeliver is found, made a dead letter with the reason and removed;
// two sweeps at once store one dead letter.
func TestSweepMovesStrandedJobs(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	// The consumer as earlier versions made it: a delivery limit of 2.
	old, err := js.CreateOrUpdateConsumer(ctx, queue.Stream, jetstream.ConsumerConfig{Durable: queue.Consumer,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: 2, FilterSubjects: []string{queue.SubjectPrefix + ">"}})
	require.NoError(t, err)
	pub := queue.NewPublisher(js)
	require.NoError(t, pub.Publish(ctx, testJob("photos/stranded")))
	for range 2 {
		require.NoError(t, stacktest.FetchOne(t, old).Nak())
	}
	// The next pull finds the job past its limit and drops it from the
	// consumer's pending; a later job is delivered and acknowledged.
	require.NoError(t, pub.Publish(ctx, testJob("photos/fine")))
	m := stacktest.FetchOne(t, old)
	require.Contains(t, string(m.Data()), "photos/fine")
	require.NoError(t, m.DoubleAck(ctx))

	// Updating that consumer to no limit works, and does not bring the
	// stranded job back.
	c, err := queue.EnsureConsumer(ctx, js, queue.ConsumerOptions{})
	require.NoError(t, err)
	require.Equal(t, -1, c.CachedInfo().Config.MaxDeliver)
	var st queue.Status
	require.Eventually(t, func() bool {
		st, err = queue.ReadStatus(ctx, js)
		return err == nil && st.Stranded == 1
	}, 10*time.Second, 20*time.Millisecond, "%+v", st)
	require.Zero(t, st.Queued)
	require.Zero(t, st.InFlight)

	ledger, err := queue.OpenLedger(ctx, js, 1)
	require.NoError(t, err)
	rep := queue.NewReporter(js)
	var wg sync.WaitGroup
	moved := make([]int, 2)
	for i := range moved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var serr error
			moved[i], serr = queue.Sweep(ctx, js, rep, ledger)
			require.NoError(t, serr)
		}()
	}
	wg.Wait()
	require.Positive(t, moved[0]+moved[1])
	dead, err := queue.DeadLetters(ctx, js)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Equal(t, "photos/stranded", dead[0].Job.Repository)
	require.Contains(t, dead[0].Error, "the queue stopped delivering it")
	require.EqualValues(t, 1, dead[0].JobSeq)

	st, err = queue.ReadStatus(ctx, js)
	require.NoError(t, err)
	require.Equal(t, queue.Status{Dead: 1, Consumers: st.Consumers}, st)
	n, err := queue.Sweep(ctx, js, rep, ledger)
	require.NoError(t, err)
	require.Zero(t, n)
}

// Status tells queued, in flight and waiting-for-retry jobs apart.
func TestStatusCounts(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	c, err := queue.EnsureConsumer(ctx, js, queue.ConsumerOptions{})
	require.NoError(t, err)
	ledger, err := queue.OpenLedger(ctx, js, 1)
	require.NoError(t, err)
	pub := queue.NewPublisher(js)
	for _, repo := range []string{"photos/a", "photos/b", "photos/c"} {
		require.NoError(t, pub.Publish(ctx, testJob(repo)))
	}
	_ = stacktest.FetchOne(t, c) // in flight
	retry := stacktest.FetchOne(t, c)
	meta, err := retry.Metadata()
	require.NoError(t, err)
	require.NoError(t, ledger.Put(ctx, meta.Sequence.Stream, queue.Record{Stored: meta.Timestamp, LastError: "500", RetryAt: time.Now().Add(time.Minute)}))
	require.NoError(t, retry.NakWithDelay(time.Minute))

	var st queue.Status
	require.Eventually(t, func() bool {
		st, err = queue.ReadStatus(ctx, js)
		return err == nil && st.Queued == 1 && st.InFlight == 1 && st.WaitingRetry == 1
	}, 10*time.Second, 20*time.Millisecond, "%+v", st)
	require.EqualValues(t, 3, st.Messages)
	require.Zero(t, st.Stranded)
	require.Len(t, st.Consumers, 1)
	require.Equal(t, queue.Consumer, st.Consumers[0].Name)
	require.Equal(t, -1, st.Consumers[0].MaxDeliver)
}
