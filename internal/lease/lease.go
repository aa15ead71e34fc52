// Package lease serialises work on one thing across worker processes, with
// short-lived leases in a JetStream key-value bucket.
//
// regscribe uses it around writes to a photo's referrers: on registries
// without the referrers API every referrer write rewrites one fallback index
// (the sha256-<hex> tag), and two processes rewriting it at once can lose a
// referrer. A lease whose holder died expires after its time to live.
package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket that holds leases.
const Bucket = "regscribe-leases"

// Leases hands out leases.
type Leases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

// Open creates (or opens) the lease bucket. A lease lasts at most ttl
// (if zero, 30 s): work done under it must be shorter.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (*Leases, error) {
	if ttl == 0 {
		ttl = 30 * time.Second
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "regscribe: leases on fallback referrer indexes",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		TTL:         ttl,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open lease bucket: %w", err)
	}
	return &Leases{kv: kv, ttl: ttl}, nil
}

// Lock waits until it holds the lease on name, or ctx ends, and returns
// the function that gives it back.
func (l *Leases) Lock(ctx context.Context, name string) (unlock func(), err error) {
	sum := sha256.Sum256([]byte(name))
	key := hex.EncodeToString(sum[:])
	wait := 10 * time.Millisecond
	for {
		rev, err := l.kv.Create(ctx, key, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
		if err == nil {
			return func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				// Only our own revision: a lease that expired and was taken
				// by another holder is not ours to end.
				_ = l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
			}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("lease %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lease %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}
