package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/reprocess"
)

// Bucket is the key-value bucket of the sweeps' memory: per registry the
// last sweep ("sweep.<registry key>"), per tag the digest last seen and
// what became of it ("tag.<registry key>.<tag key>").
const Bucket = "regscribe-reconcile"

// tagState is what a sweep remembers of one tag.
type tagState struct {
	Repository string           `json:"repository"`
	Tag        string           `json:"tag"`
	Digest     string           `json:"digest"`
	Status     reprocess.Status `json:"status"`
	// Model the status was decided for: a described photo is settled only
	// for the model that described it.
	Model string `json:"model"`
	// Rules are the photo.Rules a NotPhoto was decided by (0: before they
	// were counted): a manifest judged no photo is settled only under the
	// rules that judged it.
	Rules int `json:"rules,omitempty"`
}

// settled reports whether a tag still at this digest needs no new look:
// described, no photo, or given up before (`regscribe failed retry` queues
// those). A queued photo is looked at again until it is described; a
// manifest found no photo under older rules is looked at again (what an
// older regscribe took for no photo may be one now).
func (s tagState) settled(model string) bool {
	switch s.Status {
	case reprocess.AlreadyDescribed, reprocess.FailedBefore:
		return s.Model == model
	case reprocess.NotPhoto:
		return s.Rules == photo.Rules
	}
	return false
}

// Sweep is what one sweep of a registry found.
type Sweep struct {
	Registry string    `json:"registry"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
	// Counts of the sweep's plan and jobs (Queued: photos nobody had
	// queued a job for, that the sweep caught).
	Counts reprocess.Counts `json:"counts"`
	// Error is why the sweep failed (stopped early), if it did.
	Error string `json:"error,omitempty"`
	// Failures is how many sweeps of the registry in a row failed, this
	// one included (0 when it did not fail).
	Failures int `json:"failures,omitempty"`
}

// Took is how long the sweep took.
func (s Sweep) Took() time.Duration { return s.Ended.Sub(s.Started) }

func openBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "regscribe: reconcile sweeps, and per tag the digest last seen",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("open reconcile bucket: %w", err)
	}
	return kv, nil
}

// registryKey is a registry's key token (a host:port is no valid key).
func registryKey(host string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(host)))
	return hex.EncodeToString(sum[:8])
}

func sweepKey(host string) string { return "sweep." + registryKey(host) }

func tagKey(regKey, repository, tag string) string {
	sum := sha256.Sum256([]byte(repository + "\x00" + tag))
	return "tag." + regKey + "." + hex.EncodeToString(sum[:20])
}

// load reads every remembered tag of a registry.
func load(ctx context.Context, kv jetstream.KeyValue, regKey string) (map[string]tagState, error) {
	known := map[string]tagState{}
	err := readAll(ctx, kv, "tag."+regKey+".>", func(key string, value []byte) {
		var st tagState
		if json.Unmarshal(value, &st) == nil {
			known[key] = st
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read reconcile memory: %w", err)
	}
	return known, nil
}

// readAll calls fn with every key matching filter and its value.
func readAll(ctx context.Context, kv jetstream.KeyValue, filter string, fn func(key string, value []byte)) error {
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return errors.New("watch ended")
			case e == nil:
				return nil
			}
			fn(e.Key(), e.Value())
		}
	}
}

// remember writes what the sweep learnt of each tag (only what changed)
// and forgets the tags that are gone, except in repositories that could
// not be listed.
func remember(ctx context.Context, kv jetstream.KeyValue, regKey, model string, known map[string]tagState, items []reprocess.Item) error {
	seen := map[string]bool{}
	unlisted := map[string]bool{}
	writes := map[string]tagState{}
	for _, it := range items {
		if it.Status == reprocess.Unchecked && len(it.Tags) == 0 {
			unlisted[it.Repository] = true
			continue
		}
		for _, tag := range it.Tags {
			key := tagKey(regKey, it.Repository, tag)
			switch it.Status {
			case reprocess.Gone:
				continue
			case reprocess.Unchanged, reprocess.Unchecked:
				seen[key] = true
				continue
			}
			seen[key] = true
			st := tagState{Repository: it.Repository, Tag: tag, Digest: it.Digest, Status: it.Status, Model: model, Rules: photo.Rules}
			if known[key] != st {
				writes[key] = st
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for key, st := range writes {
		g.Go(func() error {
			b, _ := json.Marshal(st)
			_, err := kv.Put(gctx, key, b)
			return err
		})
	}
	for key, st := range known {
		if !seen[key] && !unlisted[st.Repository] {
			g.Go(func() error { return kv.Delete(gctx, key) })
		}
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("write reconcile memory: %w", err)
	}
	return nil
}

// lastSweep reads the last sweep of a registry (zero when none).
func lastSweep(ctx context.Context, kv jetstream.KeyValue, host string) (Sweep, error) {
	e, err := kv.Get(ctx, sweepKey(host))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Sweep{}, nil
	}
	if err != nil {
		return Sweep{}, fmt.Errorf("read last sweep of %s: %w", host, err)
	}
	var s Sweep
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Sweep{}, fmt.Errorf("read last sweep of %s: %w", host, err)
	}
	return s, nil
}

// Sweeps returns the last sweep of every registry, by registry name, from
// the bucket (none when no sweep ran yet).
func Sweeps(ctx context.Context, js jetstream.JetStream) ([]Sweep, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open reconcile bucket: %w", err)
	}
	var out []Sweep
	err = readAll(ctx, kv, "sweep.>", func(_ string, value []byte) {
		var s Sweep
		if json.Unmarshal(value, &s) == nil {
			out = append(out, s)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read sweeps: %w", err)
	}
	slices.SortFunc(out, func(a, b Sweep) int { return strings.Compare(a.Registry, b.Registry) })
	return out, nil
}
