package worker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// Settlement tests: no job message may be stranded (in the work-queue
// stream, never delivered again) whatever a delivery's end.

// runWorker runs a worker pool on the stack's queue until the returned
// function is called (a stopping process: jobs in flight are handed back
// after opts.ShutdownTimeout).
func runWorker(t *testing.T, s *stacktest.Stack, opts worker.Options) (stop func()) {
	t.Helper()
	opts.Logger = stacktest.Logger(t)
	if opts.AckWait == 0 {
		opts.AckWait = 5 * time.Second
	}
	if opts.Reporter == nil {
		opts.Reporter = queue.NewReporter(s.JS)
	}
	if opts.Feed == nil {
		opts.Feed = feed.NewPublisher(s.JS)
	}
	if opts.Backoff == nil {
		opts.Backoff = []time.Duration{200 * time.Millisecond}
	}
	opts.Locker, opts.Ledger = s.Leases, s.Ledger
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = worker.New(s.Client, s.Describer, s.Memory, opts).Run(ctx, s.Consumer)
	}()
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitJobs waits until the job stream holds n messages (a push's jobs
// travel from the registry's notification asynchronously).
func waitJobs(t *testing.T, s *stacktest.Stack, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := s.JS.Stream(context.Background(), queue.Stream)
		if err != nil {
			return false
		}
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == n
	}, 20*time.Second, 20*time.Millisecond, "the job stream never held %d jobs", n)
}

// waitDead waits for n dead letters and returns them.
func waitDead(t *testing.T, s *stacktest.Stack, n int) []queue.DeadLetter {
	t.Helper()
	var dead []queue.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		dead, err = queue.DeadLetters(context.Background(), s.JS)
		return err == nil && len(dead) == n
	}, 45*time.Second, 50*time.Millisecond, "want %d dead letters", n)
	return dead
}

// waitStreamEmpty waits until no job message is left.
func waitStreamEmpty(t *testing.T, s *stacktest.Stack) {
	t.Helper()
	waitJobs(t, s, 0)
}

func failingModel(c modeltest.Call) modeltest.Reply {
	return modeltest.Reply{Status: http.StatusInternalServerError, Content: "llama runner process has terminated"}
}

// A hand-back (the worker stops while the job runs) on what would be the
// last attempt is no attempt: the job is delivered again and described.
func TestHandBackOnLastAttemptIsNotAnAttempt(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, MaxAttempts: 2})
	var calls atomic.Int32
	release := make(chan struct{})
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply {
		switch calls.Add(1) {
		case 1:
			return failingModel(c) // attempt 1 fails
		case 2:
			select { // attempt 2 runs until its worker stops
			case <-release:
			case <-time.After(20 * time.Second):
			}
			return failingModel(c)
		}
		return modeltest.DescribeByDigest(c)
	}
	defer close(release)
	photo := stacktest.JPEG(t, 64, 48, 700)
	s.Push(t, "photos/handback", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: photo})
	waitJobs(t, s, 1)

	stop := runWorker(t, s, worker.Options{Concurrency: 1, MaxAttempts: 2, ShutdownTimeout: 100 * time.Millisecond})
	require.Eventually(t, func() bool { return calls.Load() >= 2 }, 20*time.Second, 10*time.Millisecond)
	stop() // hands the job back on its second delivery

	runWorker(t, s, worker.Options{Concurrency: 1, MaxAttempts: 2})
	waitStreamEmpty(t, s)
	dead, err := queue.DeadLetters(context.Background(), s.JS)
	require.NoError(t, err)
	require.Empty(t, dead)
	require.EqualValues(t, 3, calls.Load(), "attempt 2 ran after the hand-back")
}

// flakyReporter fails the first fail dead letters it is given.
type flakyReporter struct {
	*queue.Reporter
	fail atomic.Int32
}

func (r *flakyReporter) Dead(ctx context.Context, d queue.DeadLetter) error {
	if r.fail.Add(-1) >= 0 {
		return errors.New("dead-letter stream unavailable")
	}
	return r.Reporter.Dead(ctx, d)
}

// resultlessReporter fails to store the first fail results it is given.
type resultlessReporter struct {
	*queue.Reporter
	fail atomic.Int32
}

func (r *resultlessReporter) Result(ctx context.Context, res queue.Result) error {
	if r.fail.Add(-1) >= 0 {
		return errors.New("result stream unavailable")
	}
	return r.Reporter.Result(ctx, res)
}

// A job whose result, or whose description event, could not be stored is
// kept, and its next delivery stores both without doing the work again: no
// job ends unseen, by the result stream or by search.
func TestReportFailingIsStoredNextDelivery(t *testing.T) {
	t.Parallel()
	for name, failing := range map[string]func(s *stacktest.Stack, o *worker.Options) *atomic.Int32{
		"result": func(s *stacktest.Stack, o *worker.Options) *atomic.Int32 {
			rep := &resultlessReporter{Reporter: queue.NewReporter(s.JS)}
			o.Reporter = rep
			return &rep.fail
		},
		"description event": func(s *stacktest.Stack, o *worker.Options) *atomic.Int32 {
			f := &failingFeed{Publisher: feed.NewPublisher(s.JS)}
			o.Feed = f
			return &f.fail
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := stacktest.Start(t, stacktest.Options{Workers: -1, Worker: worker.Options{Mode: worker.ModeReferrer}})
			s.Push(t, "photos/noreport", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 706)})
			waitJobs(t, s, 1)
			opts := worker.Options{Concurrency: 1, Mode: worker.ModeReferrer}
			fail := failing(s, &opts)
			fail.Store(1)
			runWorker(t, s, opts)

			waitStreamEmpty(t, s)
			res := resultOf(t, s, "the job", func(r queue.Result) bool { return r.JobSeq == 1 })
			require.Equal(t, queue.Described, res.Outcome, "the result is the one of the run that described it")
			require.Equal(t, 1, res.Attempts, "the first delivery's work, stored by the second")
			// Not the pushes' announcements (queued), nor the skipped event
			// that ends the referrer's own: the job's description.
			e := waitEvent(t, s, "the job's event", func(e feed.Event) bool { return e.Repository == "photos/noreport" && e.Kind == feed.Written })
			require.Equal(t, feed.JobID(1, 0), e.ID)
			require.Equal(t, "referrer "+res.Written, e.Photos[0].Stored)
			require.Len(t, s.Model.Calls(), 1, "the work was not done again")
			require.Less(t, fail.Load(), int32(0))
		})
	}
}

// A dead letter that could not be stored on the last attempt is stored by
// the next delivery, without doing the work again.
func TestDeadLetterFailingOnLastAttemptIsStoredNextDelivery(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, MaxAttempts: 2})
	s.Model.Answer = failingModel
	s.Push(t, "photos/deadfail", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 701)})
	waitJobs(t, s, 1)
	rep := &flakyReporter{Reporter: queue.NewReporter(s.JS)}
	rep.fail.Store(1)
	runWorker(t, s, worker.Options{Concurrency: 1, MaxAttempts: 2, Reporter: rep})

	dead := waitDead(t, s, 1)
	waitStreamEmpty(t, s)
	require.Equal(t, 2, dead[0].Attempts)
	require.Contains(t, dead[0].Error, "gave up after 2 attempts")
	require.Contains(t, dead[0].Error, "llama runner process has terminated")
	require.Len(t, s.Model.Calls(), 2, "the delivery that stored the dead letter did no work")
}

// A worker that dies on the last delivery (its ack wait expires): the
// next delivery makes the job a dead letter without doing the work again.
func TestAckWaitExpiringOnLastDeliveryIsADeadLetter(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, MaxAttempts: 2})
	ctx := context.Background()
	cfg := s.Consumer.CachedInfo().Config
	cfg.AckWait = 500 * time.Millisecond
	var err error
	s.Consumer, err = s.JS.UpdateConsumer(ctx, queue.Stream, cfg)
	require.NoError(t, err)
	s.Push(t, "photos/killed", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 702)})
	waitJobs(t, s, 1)
	// Two workers take the job and die with it: its ack wait expires.
	for want := uint64(1); want <= 2; want++ {
		msg := stacktest.FetchOne(t, s.Consumer)
		meta, err := msg.Metadata()
		require.NoError(t, err)
		require.Equal(t, want, meta.NumDelivered)
	}

	runWorker(t, s, worker.Options{Concurrency: 1, MaxAttempts: 2, AckWait: time.Second})
	dead := waitDead(t, s, 1)
	waitStreamEmpty(t, s)
	require.Contains(t, dead[0].Error, "delivered 2 times without finishing: the worker handling it stopped")
	require.Equal(t, 2, dead[0].Attempts)
	require.Empty(t, s.Model.Calls(), "a job past its attempts is not done again")
}

// Workers configured with other REGSCRIBE_MAX_ATTEMPTS do not change how
// often another worker tries: the consumer has no delivery limit.
func TestWorkersWithDifferentMaxAttempts(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, MaxAttempts: 4})
	ctx := context.Background()
	// Another worker process, configured with 2 attempts, starts.
	_, err := queue.EnsureConsumer(ctx, s.JS, queue.ConsumerOptions{AckWait: 5 * time.Second})
	require.NoError(t, err)

	s.Model.Answer = failingModel
	s.Push(t, "photos/maxattempts", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 703)})
	waitJobs(t, s, 1)
	runWorker(t, s, worker.Options{Concurrency: 1, MaxAttempts: 4})
	dead := waitDead(t, s, 1)
	waitStreamEmpty(t, s)
	require.Contains(t, dead[0].Error, "gave up after 4 attempts")
	require.Len(t, s.Model.Calls(), 4)
	info, err := s.Consumer.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, -1, info.Config.MaxDeliver)
}

// Dead letters of different job messages never collide in the dead-letter
// stream's duplicate window: two malformed messages are two dead letters.
func TestMalformedMessagesAreEachADeadLetter(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	ctx := context.Background()
	for _, raw := range []string{`{"v":1}`, `not json`} {
		_, err := s.JS.Publish(ctx, queue.Subject("distribution"), []byte(raw))
		require.NoError(t, err)
	}
	dead := waitDead(t, s, 2)
	for _, d := range dead {
		require.Contains(t, d.Error, "malformed job")
	}
	waitStreamEmpty(t, s)
}

// A job queued again with `failed retry` that fails again within the
// duplicate window is a second dead letter.
func TestFailedRetryFailingAgainIsADeadLetterAgain(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	ctx := context.Background()
	// A job that fails for good (a registry not configured).
	job := queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:1", Repository: "photos/elsewhere",
		Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Source: "distribution", Received: time.Now()}
	require.NoError(t, queue.NewPublisher(s.JS).Publish(ctx, job))
	dead := waitDead(t, s, 1)
	var seq uint64
	for _, d := range dead {
		if d.Job.Repository == job.Repository {
			seq = d.Seq
			require.Contains(t, d.Error, "not configured")
		}
	}
	_, err := queue.RetryDead(ctx, s.JS, seq)
	require.NoError(t, err)
	waitStreamEmpty(t, s)
	dead = waitDead(t, s, 1)
	n := 0
	for _, d := range dead {
		if d.Job.Repository == job.Repository {
			n++
			require.NotEqual(t, seq, d.Seq, "a new dead letter")
		}
	}
	require.Equal(t, 1, n)
	require.True(t, strings.Contains(dead[0].Error, "not configured"))
}

// lossyConsumer hands out job messages whose first acknowledgements are
// lost on the way, as in a NATS restart: JetStream never hears of them.
type lossyConsumer struct {
	jetstream.Consumer
	lose atomic.Int32
}

func (c *lossyConsumer) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	b, err := c.Consumer.Fetch(n, opts...)
	if err != nil {
		return nil, err
	}
	out := make(chan jetstream.Msg)
	go func() {
		defer close(out)
		for m := range b.Messages() {
			out <- lossyMsg{Msg: m, c: c}
		}
	}()
	return lossyBatch{MessageBatch: b, msgs: out}, nil
}

type lossyBatch struct {
	jetstream.MessageBatch
	msgs chan jetstream.Msg
}

func (b lossyBatch) Messages() <-chan jetstream.Msg { return b.msgs }

type lossyMsg struct {
	jetstream.Msg
	c *lossyConsumer
}

func (m lossyMsg) Ack() error {
	if m.c.lose.Add(-1) >= 0 {
		return nil // fire and forget: the loss goes unnoticed
	}
	return m.Msg.Ack()
}

func (m lossyMsg) DoubleAck(ctx context.Context) error {
	if m.c.lose.Add(-1) >= 0 {
		return context.DeadlineExceeded // a confirmed ack notices
	}
	return m.Msg.DoubleAck(ctx)
}

// A job whose acknowledgement is lost is delivered again: it ends once all
// the same, with one result and no second model call.
func TestLostAcknowledgementEndsTheJobOnce(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	ctx := context.Background()
	cfg := s.Consumer.CachedInfo().Config
	cfg.AckWait = 700 * time.Millisecond
	var err error
	s.Consumer, err = s.JS.UpdateConsumer(ctx, queue.Stream, cfg)
	require.NoError(t, err)
	s.Push(t, "photos/lostack", "", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 705)})
	waitJobs(t, s, 1)
	lossy := &lossyConsumer{Consumer: s.Consumer}
	lossy.lose.Store(1)
	opts := worker.Options{Concurrency: 1, AckWait: 700 * time.Millisecond, Logger: stacktest.Logger(t),
		Reporter: queue.NewReporter(s.JS), Locker: s.Leases, Ledger: s.Ledger, Backoff: []time.Duration{100 * time.Millisecond}}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = worker.New(s.Client, s.Describer, s.Memory, opts).Run(wctx, lossy)
	}()
	t.Cleanup(func() { cancel(); <-done })

	waitStreamEmpty(t, s)
	require.Less(t, lossy.lose.Load(), int32(0), "the lost acknowledgement was followed by another")
	var mine []queue.Result
	require.Eventually(t, func() bool {
		mine = mine[:0]
		for _, r := range results(t, s) {
			if r.JobSeq == 1 { // the push's job; its write-back's is another
				mine = append(mine, r)
			}
		}
		return len(mine) > 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Len(t, mine, 1, "one result per job message: %+v", mine)
	require.Equal(t, queue.Described, mine[0].Outcome)
	require.Len(t, s.Model.Calls(), 1)
}

// A worker that dies after it stored a job's dead letter and before its
// result leaves the record of a job given up: the next delivery stores the
// failed result and ends the message, so the job ends once, seen by the
// result stream as by the dead letters.
func TestJobGivenUpByADyingWorkerHasItsResult(t *testing.T) {
	t.Parallel()
	for name, rec := range map[string]func(stored time.Time) queue.Record{
		// What a worker keeps once the dead letter is stored.
		"record with its result": func(stored time.Time) queue.Record {
			return queue.Record{Stored: stored, Dead: true, Result: &queue.Result{Outcome: queue.Failed,
				Reason: "malformed job: the one stored before", JobSeq: 1, Attempts: 1}}
		},
		// What a worker of an earlier version kept: only that it is dead.
		"record without": func(stored time.Time) queue.Record {
			return queue.Record{Stored: stored, Dead: true}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := stacktest.Start(t, stacktest.Options{Workers: -1})
			ctx := context.Background()
			ack, err := s.JS.Publish(ctx, queue.Subject("distribution"), []byte(`not json`))
			require.NoError(t, err)
			st, err := s.JS.Stream(ctx, queue.Stream)
			require.NoError(t, err)
			raw, err := st.GetMsg(ctx, ack.Sequence)
			require.NoError(t, err)
			require.NoError(t, s.Ledger.Put(ctx, ack.Sequence, rec(raw.Time)))
			// The dying worker's delivery.
			require.NoError(t, stacktest.FetchOne(t, s.Consumer).Nak())

			runWorker(t, s, worker.Options{Concurrency: 1})
			waitStreamEmpty(t, s)
			res := resultOf(t, s, "the job given up", func(r queue.Result) bool { return r.JobSeq == ack.Sequence })
			require.Equal(t, queue.Failed, res.Outcome)
			require.NotEmpty(t, res.Reason)
			dead, err := queue.DeadLetters(ctx, s.JS)
			require.NoError(t, err)
			require.Empty(t, dead, "its dead letter was stored before; none is stored again")
		})
	}
}
