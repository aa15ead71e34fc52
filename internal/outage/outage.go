// Package outage keeps what the workers know of their model's outages in
// a NATS key-value bucket ([Bucket]): which model is unreachable, since
// when and why, for the gallery's banner and `regscribe status`, which may
// run in other processes than the workers.
//
// Workers report ([Board.Down], again while it lasts, and [Board.Up]); the
// web process follows the bucket ([Follow]); commands read it once
// ([Read]). A record lives [TTL] unless a worker reports it again, so an
// outage whose workers all stopped does not outlive them by long. It must
// not know about jobs, registries or HTTP.
package outage

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the outages, one key per model.
const Bucket = "regscribe-model-outages"

// TTL is how long an outage is kept after a worker last reported it.
// Workers report an ongoing outage at least every 30 s (their probe).
const TTL = 2 * time.Minute

// Outage is a model the workers cannot reach.
type Outage struct {
	// Model is provider/model, as the workers write it.
	Model string `json:"model"`
	// Since is when a worker first found it unreachable.
	Since time.Time `json:"since"`
	// Cause is the last error met, in words a person can act on.
	Cause string `json:"cause"`
	// Seen is when a worker last reported it.
	Seen time.Time `json:"seen"`
}

// Board is where workers report their model's outages.
type Board struct {
	kv jetstream.KeyValue
}

// Open opens (or creates) the bucket.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Board, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "regscribe: the models the workers cannot reach, since when and why",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		TTL:         TTL,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", Bucket, err)
	}
	return &Board{kv: kv}, nil
}

func key(model string) string {
	sum := sha256.Sum256([]byte(model))
	return "model." + hex.EncodeToString(sum[:16])
}

// Down reports model unreachable because of cause: an outage already
// reported keeps its start.
func (b *Board) Down(ctx context.Context, model string, cause error) error {
	now := time.Now().UTC()
	o := Outage{Model: model, Since: now, Cause: cause.Error(), Seen: now}
	if e, err := b.kv.Get(ctx, key(model)); err == nil {
		var old Outage
		if json.Unmarshal(e.Value(), &old) == nil && !old.Since.IsZero() {
			o.Since = old.Since
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read the outage of %s: %w", model, err)
	}
	v, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, key(model), v); err != nil {
		return fmt.Errorf("report the outage of %s: %w", model, err)
	}
	return nil
}

// Up reports model reachable again.
func (b *Board) Up(ctx context.Context, model string) error {
	err := b.kv.Delete(ctx, key(model))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("report %s reachable: %w", model, err)
	}
	return nil
}

// Read returns the outages going on, oldest first (none when no worker
// ever opened the bucket).
func Read(ctx context.Context, js jetstream.JetStream) ([]Outage, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", Bucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the outages: %w", err)
	}
	var out []Outage
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read an outage: %w", err)
		}
		if o, ok := decode(e.Value()); ok {
			out = append(out, o)
		}
	}
	sortOutages(out)
	return out, nil
}

func decode(v []byte) (Outage, bool) {
	var o Outage
	if json.Unmarshal(v, &o) != nil || o.Model == "" {
		return Outage{}, false
	}
	return o, true
}

func sortOutages(out []Outage) {
	slices.SortFunc(out, func(a, b Outage) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.Model, b.Model))
	})
}

// Follower keeps the outages going on, as the bucket says, up to date.
type Follower struct {
	mu      sync.Mutex
	outages map[string]Outage
}

// Follow follows the bucket until ctx ends, waiting for it to exist (the
// workers create it). Errors are logged, and following starts again.
func Follow(ctx context.Context, js jetstream.JetStream, log *slog.Logger) *Follower {
	f := &Follower{outages: map[string]Outage{}}
	go f.run(ctx, js, log)
	return f
}

// Current returns the outages going on, oldest first: those reported
// within TTL (the bucket drops older ones without telling a watch).
func (f *Follower) Current() []Outage {
	f.mu.Lock()
	out := make([]Outage, 0, len(f.outages))
	for _, o := range f.outages {
		if time.Since(o.Seen) < TTL {
			out = append(out, o)
		}
	}
	f.mu.Unlock()
	sortOutages(out)
	return out
}

func (f *Follower) run(ctx context.Context, js jetstream.JetStream, log *slog.Logger) {
	for {
		err := f.follow(ctx, js)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			log.Warn("following the model's outages failed; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (f *Follower) follow(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch of the outages ended")
			}
			if e == nil {
				continue // the values stored before the watch are all in
			}
			f.mu.Lock()
			if o, ok := decode(e.Value()); ok && e.Operation() == jetstream.KeyValuePut {
				f.outages[e.Key()] = o
			} else {
				delete(f.outages, e.Key())
			}
			f.mu.Unlock()
		}
	}
}

// Line says o in one line, with how many jobs wait for the model:
// "model ollama/qwen2.5vl:3b unreachable since 12:27 UTC, 7 Dec (for 4m0s); 3
// jobs wait: CAUSE".
func (o Outage) Line(waiting uint64) string {
	jobs := fmt.Sprintf("%d jobs wait", waiting)
	if waiting == 1 {
		jobs = "1 job waits"
	}
	return fmt.Sprintf("model %s unreachable since %s (for %s); %s: %s", o.Model, o.Since.UTC().Format("15:04 UTC, 2 Jan"),
		time.Since(o.Since).Round(time.Second), jobs, o.Cause)
}
