package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/feed"
)

// LedgerBucket is the key-value bucket that keeps, per job message, what
// JetStream's delivery count does not say: deliveries handed back unworked,
// the last error, and whether the dead letter is stored. Workers write it
// only when a delivery does not end the job or ends it as a dead letter
// (rare), and read it only on a redelivery.
const LedgerBucket = "regscribe-attempts"

// LedgerTTL is how long a record lives after its last write: leftovers of
// messages that are gone vanish. A job that waits longer than this between
// two deliveries loses its record (its hand-backs then count as attempts).
const LedgerTTL = 7 * 24 * time.Hour

// Record is what the ledger keeps about one job message.
type Record struct {
	// Stored is the message's time in the job stream. A record whose time
	// differs belongs to an earlier message of the same sequence (the
	// stream was recreated) and is not used.
	Stored time.Time `json:"stored"`
	// HandedBack counts deliveries handed back without doing the work
	// (the worker was stopping): they are not attempts.
	HandedBack uint64 `json:"handedBack,omitempty"`
	// LastError is the error of the last failed attempt, and ErrorDelivery
	// the delivery (JetStream's NumDelivered) that failed with it.
	LastError     string `json:"lastError,omitempty"`
	ErrorDelivery uint64 `json:"errorDelivery,omitempty"`
	// GiveUp is the reason of a job given up whose dead letter could not be
	// stored yet: the next delivery stores it without doing the work again.
	GiveUp string `json:"giveUp,omitempty"`
	// RetryAt is when a job put back with a delay is due again.
	RetryAt time.Time `json:"retryAt,omitzero"`
	// Dead is set once the job's dead letter is stored: a later delivery
	// (its Term was lost) only terminates it.
	Dead bool `json:"dead,omitempty"`
	// Result is the result of a job that ended but whose result could not
	// be stored: the next delivery stores it and ends the job without doing
	// the work again.
	Result *Result `json:"result,omitempty"`
	// Events are the description events of that job (package feed), stored
	// with its result: the next delivery publishes them again (their
	// message ids make a second copy of one already stored count once),
	// then the result.
	Events []feed.Event `json:"events,omitempty"`
}

// Ledger is the record store in [LedgerBucket].
type Ledger struct {
	kv jetstream.KeyValue
}

// OpenLedger creates (or opens) the ledger bucket.
func OpenLedger(ctx context.Context, js jetstream.JetStream, replicas int) (*Ledger, error) {
	kv, err := openRecords(ctx, js, LedgerBucket, "regscribe: hand-backs, last errors and dead letters of job messages, by stream sequence", replicas, LedgerTTL)
	if err != nil {
		return nil, err
	}
	return &Ledger{kv: kv}, nil
}

// openRecords creates (or opens, updating its settings) a bucket of
// records that keeps the newest value of each key for ttl, on file storage.
func openRecords(ctx context.Context, js jetstream.JetStream, bucket, description string, replicas int, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: description,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		TTL:         ttl,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	return kv, nil
}

func ledgerKey(seq uint64) string { return strconv.FormatUint(seq, 10) }

// Get returns the record of the job message with stream sequence seq
// stored at stored; ok is false when there is none.
func (l *Ledger) Get(ctx context.Context, seq uint64, stored time.Time) (r Record, ok bool, err error) {
	e, err := l.kv.Get(ctx, ledgerKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{Stored: stored}, false, nil
	}
	if err != nil {
		return Record{Stored: stored}, false, fmt.Errorf("read the record of job message %d: %w", seq, err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil || !r.Stored.Equal(stored) {
		return Record{Stored: stored}, false, nil
	}
	return r, true, nil
}

// Put stores the record of the job message with stream sequence seq.
func (l *Ledger) Put(ctx context.Context, seq uint64, r Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := l.kv.Put(ctx, ledgerKey(seq), data); err != nil {
		return fmt.Errorf("record job message %d: %w", seq, err)
	}
	return nil
}

// Forget removes the record of a job message that ended.
func (l *Ledger) Forget(ctx context.Context, seq uint64) error {
	if err := l.kv.Purge(ctx, ledgerKey(seq)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget job message %d: %w", seq, err)
	}
	return nil
}

// records reads every record (the bucket holds only jobs that failed or
// were handed back and have not ended, and dead markers: few).
func (l *Ledger) records(ctx context.Context) (map[uint64]Record, error) {
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	out := map[uint64]Record{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			seq, err := strconv.ParseUint(e.Key(), 10, 64)
			var r Record
			if err == nil && json.Unmarshal(e.Value(), &r) == nil {
				out[seq] = r
			}
		}
	}
}
