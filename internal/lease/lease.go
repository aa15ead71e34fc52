// Package lease serialises work on one thing across worker processes, with
// short-lived leases in a JetStream key-value bucket.
//
// regscribe uses it around writes to a photo's referrers: on registries
// without the referrers API every referrer write rewrites one fallback index
// (the sha256-<hex> tag), and two processes rewriting it at once can lose a
// referrer; around reconcile sweeps; and around reprocess runs of one
// repository ([Leases.TryLock]: a second run is told which one runs). A lease is renewed while it is held, so work under it may take
// longer than its time to live; a lease whose holder died (no renewals)
// expires after its time to live, and a holder that could not renew it in
// time learns that it lost it through the context [Leases.Lock] returns.
package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
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

// ErrLost is the cause (see [context.Cause]) of the end of a held context
// whose lease was lost: it could not be renewed within its time to live, or
// it expired and was taken by another holder.
var ErrLost = errors.New("lease lost")

// Open creates (or opens) the lease bucket. A lease expires ttl (if zero,
// 10 s) after its holder last renewed it; holders renew theirs every third
// of ttl. The ttl is how long the jobs of one photo wait when the worker
// holding its lease died: short, since a live holder keeps renewing.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (*Leases, error) {
	if ttl == 0 {
		ttl = 10 * time.Second
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

// Lock waits until it holds the lease on name, or ctx ends. It returns the
// context for the work done under the lease, derived from ctx, and the
// function that gives the lease back (and cancels that context). The lease
// is renewed until then; if it is lost (see [ErrLost]) the context is
// cancelled with cause ErrLost, so the work stops rather than continue
// unprotected.
func (l *Leases) Lock(ctx context.Context, name string) (held context.Context, unlock func(), err error) {
	key := keyOf(name)
	wait := 10 * time.Millisecond
	for {
		value := stamp()
		rev, err := l.kv.Create(ctx, key, value)
		if err == nil {
			return l.hold(ctx, name, key, rev, value)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, nil, fmt.Errorf("lease %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("lease %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// HeldError is [Leases.TryLock]'s error when another holder has the lease.
type HeldError struct {
	// Name of the lease, and Holder: what its holder said of itself.
	Name, Holder string
}

func (e *HeldError) Error() string { return fmt.Sprintf("lease %s is held by %s", e.Name, e.Holder) }

// TryLock takes the lease on name when nobody holds it, as [Leases.Lock]
// does, and records holder (what someone who finds it held is told), else
// returns a [*HeldError] naming the holder at once.
func (l *Leases) TryLock(ctx context.Context, name, holder string) (held context.Context, unlock func(), err error) {
	key, value := keyOf(name), []byte(holder)
	// A lease that expires or is given back between the two calls is tried again.
	for range 3 {
		rev, err := l.kv.Create(ctx, key, value)
		if err == nil {
			return l.hold(ctx, name, key, rev, value)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, nil, fmt.Errorf("lease %s: %w", name, err)
		}
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("lease %s: %w", name, err)
		}
		return nil, nil, &HeldError{Name: name, Holder: string(e.Value())}
	}
	return nil, nil, fmt.Errorf("lease %s: taken and given back again and again", name)
}

func keyOf(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// hold renews the lease at revision rev, writing value, until it is given
// back or lost.
func (l *Leases) hold(ctx context.Context, name, key string, rev uint64, value []byte) (context.Context, func(), error) {
	held, cancel := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		every := l.ttl / 3
		renewed := time.Now()
		t := time.NewTimer(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(context.Background(), every)
			next, err := l.kv.Update(rctx, key, value, rev)
			rcancel()
			switch {
			case err == nil:
				rev, renewed = next, time.Now()
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Since(renewed)+every >= l.ttl:
				// Expired, perhaps taken by another holder, or the next
				// try could come after it expires: not ours to renew, nor
				// to end.
				rev = 0
				cancel(fmt.Errorf("%w: %s: %w", ErrLost, name, err))
				return
			}
			t.Reset(every)
		}
	}()
	var once sync.Once
	return held, func() {
		once.Do(func() {
			close(stop)
			<-done
			cancel(nil)
			if rev == 0 {
				return
			}
			ctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer dcancel()
			// Only our own revision: a lease that expired and was taken by
			// another holder is not ours to end.
			_ = l.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		})
	}, nil
}

func stamp() []byte { return []byte(time.Now().UTC().Format(time.RFC3339Nano)) }
