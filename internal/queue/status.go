package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Status is what the queue holds, from JetStream's own counts and the
// workers' ledger. Every number is a count of job messages (a raw zot event
// is one message even if it names several photos).
type Status struct {
	// Messages is every job message in the job stream: the sum of Queued,
	// InFlight, WaitingRetry and Stranded.
	Messages uint64 `json:"messages"`
	// Queued are messages not yet delivered to any worker (the consumer's
	// NumPending).
	Queued uint64 `json:"queued"`
	// InFlight are messages delivered and not yet settled (the consumer's
	// NumAckPending) that are not WaitingRetry: a worker is on them, or
	// their retry delay ran out and they wait for a free worker.
	InFlight uint64 `json:"inFlight"`
	// WaitingRetry are messages put back with a delay (a retryable
	// failure) whose delay has not run out. JetStream does not tell them
	// apart from the ones in flight; the count comes from the workers'
	// ledger, where each delayed retry is recorded with its due time.
	WaitingRetry uint64 `json:"waitingRetry"`
	// Stranded are messages in the job stream that no consumer will
	// deliver again (Messages minus NumPending minus NumAckPending): left by
	// an earlier version's delivery limit, or on a subject no worker took
	// when they arrived. The workers' sweep ([Sweep]) makes them dead
	// letters, so this reads 0 soon after a worker starts.
	Stranded uint64 `json:"stranded"`
	// Dead is the number of dead letters (regscribe failed list).
	Dead uint64 `json:"deadLetters"`
	// Consumers are the job stream's consumers (regscribe uses one).
	Consumers []ConsumerStatus `json:"consumers"`
}

// ConsumerStatus are a consumer's own facts.
type ConsumerStatus struct {
	Name string `json:"name"`
	// Pending and AckPending are JetStream's NumPending and NumAckPending.
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ackPending"`
	// Redelivered are unsettled messages delivered more than once.
	Redelivered int `json:"redelivered"`
	// WaitingPulls are fetch requests waiting for a message: idle worker slots.
	WaitingPulls int `json:"waitingPulls"`
	// Delivered and AckFloor are the stream sequences of the last message
	// delivered and of the last one below which all are settled.
	Delivered uint64 `json:"delivered"`
	AckFloor  uint64 `json:"ackFloor"`
	// MaxDeliver is the consumer's delivery limit; -1 is none (regscribe's
	// workers count attempts themselves).
	MaxDeliver int           `json:"maxDeliver"`
	AckWait    time.Duration `json:"ackWait"`
}

// ReadStatus reads the queue's status. The job stream must exist; the
// consumer and the ledger need not (nothing delivered, nothing failed).
func ReadStatus(ctx context.Context, js jetstream.JetStream) (Status, error) {
	var s Status
	st, err := js.Stream(ctx, Stream)
	if err != nil {
		return s, fmt.Errorf("open %s: %w", Stream, err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		return s, err
	}
	s.Messages, s.Queued = si.State.Msgs, si.State.Msgs
	s.Consumers = []ConsumerStatus{}
	infos, err := consumerInfos(ctx, st)
	if err != nil {
		return s, err
	}
	for _, ci := range infos {
		s.Consumers = append(s.Consumers, ConsumerStatus{
			Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
			WaitingPulls: ci.NumWaiting, Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream,
			MaxDeliver: ci.Config.MaxDeliver, AckWait: ci.Config.AckWait,
		})
		if ci.Name != Consumer {
			continue
		}
		s.Queued = min(ci.NumPending, si.State.Msgs)
		unsettled := min(uint64(ci.NumAckPending), si.State.Msgs-s.Queued)
		s.Stranded = si.State.Msgs - s.Queued - unsettled
		s.WaitingRetry, err = waitingRetry(ctx, js)
		if err != nil {
			return s, err
		}
		s.WaitingRetry = min(s.WaitingRetry, unsettled)
		s.InFlight = unsettled - s.WaitingRetry
	}
	if ds, err := js.Stream(ctx, DeadStream); err == nil {
		if di, err := ds.Info(ctx); err == nil {
			s.Dead = di.State.Msgs
		}
	}
	return s, nil
}

// consumerInfos returns the info of each consumer of st.
func consumerInfos(ctx context.Context, st jetstream.Stream) ([]*jetstream.ConsumerInfo, error) {
	var out []*jetstream.ConsumerInfo
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		out = append(out, ci)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list consumers of %s: %w", Stream, err)
	}
	return out, nil
}

// waitingRetry counts ledger records of retries not yet due.
func waitingRetry(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	kv, err := js.KeyValue(ctx, LedgerBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	recs, err := (&Ledger{kv: kv}).records(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", LedgerBucket, err)
	}
	var n uint64
	now := time.Now()
	for _, r := range recs {
		if !r.Dead && r.RetryAt.After(now) {
			n++
		}
	}
	return n, nil
}
