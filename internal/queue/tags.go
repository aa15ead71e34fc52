package queue

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

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// TagBucket is the key-value bucket of what was announced per tag. The
// notifier records every announced push (and deletion) of a tag there
// before it queues the push's job, and a worker records each tag move it
// makes right before it makes it, so a job that finds its tag on another
// manifest can tell "the registry has not linked my push yet" from "a
// later push owns the tag" by what was announced, not by a guess.
//
// Key: "tag." and the first 32 hex digits of the SHA-256 of registry
// (lower-cased), repository and tag; the value ([TagRecord], JSON) names
// them. Writes are compare-and-swap on the key's revision.
const TagBucket = "regscribe-tags"

// TagTTL is how long a tag's record lives after its last write. A job that
// runs later than that after its push finds no record and decides as
// without one.
const TagTTL = 3 * 24 * time.Hour

// maxMoves bounds [TagRecord.Moves].
const maxMoves = 8

// maxConflicts bounds the compare-and-swap tries of one write of a record.
const maxConflicts = 16

// TagRecord is what is known of one tag.
type TagRecord struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Digest is the manifest last announced as pushed to the tag (regscribe's
	// own tag moves do not count); "" when the last announcement was the
	// tag's deletion.
	Digest string `json:"digest,omitempty"`
	// Event identifies that announcement (the job's Event).
	Event string `json:"event,omitempty"`
	// At is when it happened: the event's own time where the format gives
	// one (Distribution's timestamp), otherwise when the notifier received
	// it. An announcement from before At changes nothing: a registry
	// delivering an older event again does not undo a newer one.
	At time.Time `json:"at"`
	// Described is the annotated manifest of Digest a worker moved the tag
	// to after that announcement; "" until one did.
	Described string `json:"described,omitempty"`
	// Moves are regscribe's latest tag moves (annotated manifests pushed by
	// the tag), oldest first, at most 8: the announcement of one of them is
	// regscribe's own write-back, not a push.
	Moves []TagMove `json:"moves,omitempty"`
}

// TagMove is one tag move of regscribe's.
type TagMove struct {
	// Digest is the annotated manifest the tag was moved to.
	Digest string `json:"digest"`
	// Event is the announcement of the move once it came: the same
	// manifest announced again under another event is a person pushing it.
	Event string `json:"event,omitempty"`
}

// Moved reports whether regscribe moved the tag to digest (one of Moves).
func (r TagRecord) Moved(digest string) bool {
	return slices.ContainsFunc(r.Moves, func(m TagMove) bool { return m.Digest == digest })
}

// TagAnnouncement is one announced change of a tag.
type TagAnnouncement struct {
	Registry, Repository, Tag string
	// Digest is the manifest pushed to the tag; empty for a deletion.
	Digest string
	// Event identifies the announcement (the job's Event).
	Event string
	// At is when it happened (see [TagRecord.At]).
	At time.Time
	// Deleted: the tag was deleted.
	Deleted bool
}

// Tags is the record store in [TagBucket].
//
// Its writes sit on the notifier's path, which a registry calls one event
// at a time, so they cost one round trip where they can: Tags keeps the
// records it wrote or saw change (a watch on the bucket, from when it was
// opened) with their revisions, and writes on the revision it holds; only
// when that is stale (a write it did not see yet) does it read the record
// again. A tag it knows nothing of is created, read only if it exists.
type Tags struct {
	kv    jetstream.KeyValue
	known *lru.Cache[string, knownTag]
}

// knownTag is a record and the revision it was written at.
type knownTag struct {
	rec TagRecord
	rev uint64
}

// knownTags bounds the records Tags keeps (a few hundred bytes each).
const knownTags = 16384

// OpenTags creates (or opens) the tag bucket. The watch that keeps its
// records current ends with ctx.
func OpenTags(ctx context.Context, js jetstream.JetStream, replicas int) (*Tags, error) {
	kv, err := openRecords(ctx, js, TagBucket, "regscribe: per tag, the push last announced and regscribe's own tag moves", replicas, TagTTL)
	if err != nil {
		return nil, err
	}
	known, err := lru.New[string, knownTag](knownTags)
	if err != nil {
		return nil, err
	}
	t := &Tags{kv: kv, known: known}
	// Without the watch, writes still land: a stale revision is read again.
	if w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly()); err == nil {
		go t.follow(ctx, w)
	}
	return t, nil
}

// follow keeps the records of the tags written elsewhere current.
func (t *Tags) follow(ctx context.Context, w jetstream.KeyWatcher) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				t.known.Remove(e.Key())
				continue
			}
			var r TagRecord
			if json.Unmarshal(e.Value(), &r) != nil {
				t.known.Remove(e.Key())
				continue
			}
			t.remember(e.Key(), r, e.Revision())
		}
	}
}

// remember keeps r as the record of key at revision rev, unless a later
// one is kept (the watch may bring a write after Tags made a newer one).
func (t *Tags) remember(key string, r TagRecord, rev uint64) {
	if k, ok := t.known.Peek(key); ok && k.rev > rev {
		return
	}
	t.known.Add(key, knownTag{rec: r, rev: rev})
}

// Held is [Tags.Get] answered from the records Tags keeps (kept current by
// its watch, a moment behind a write elsewhere) when it keeps the tag's,
// else read: for decisions on a hot path that a record a moment old
// decides as well as the newest.
func (t *Tags) Held(ctx context.Context, registry, repository, tag string) (TagRecord, bool, error) {
	if k, ok := t.known.Peek(tagKey(registry, repository, tag)); ok {
		r := k.rec
		r.Moves = slices.Clone(r.Moves)
		return r, true, nil
	}
	return t.Get(ctx, registry, repository, tag)
}

func tagKey(registry, repository, tag string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(registry) + "\x00" + repository + "\x00" + tag))
	return "tag." + hex.EncodeToString(sum[:16])
}

// Get returns the record of registry/repository:tag; ok is false when there
// is none.
func (t *Tags) Get(ctx context.Context, registry, repository, tag string) (r TagRecord, ok bool, err error) {
	r, _, ok, err = t.get(ctx, tagKey(registry, repository, tag))
	if err != nil {
		return r, false, fmt.Errorf("read the record of tag %s/%s:%s: %w", registry, repository, tag, err)
	}
	return r, ok, nil
}

func (t *Tags) get(ctx context.Context, key string) (TagRecord, uint64, bool, error) {
	e, err := t.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return TagRecord{}, 0, false, nil
	}
	if err != nil {
		return TagRecord{}, 0, false, err
	}
	var r TagRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		// A record this build cannot read is replaced, not trusted.
		return TagRecord{}, e.Revision(), false, nil
	}
	return r, e.Revision(), true, nil
}

// Announce records an announced push or deletion of a tag. The
// announcement of one of regscribe's own tag moves is marked on that move
// and is no push: own reports it (its job would find the description
// there, so the notifier queues none). An announcement from before the
// record's time changes nothing.
func (t *Tags) Announce(ctx context.Context, a TagAnnouncement) (own bool, err error) {
	err = t.update(ctx, a.Registry, a.Repository, a.Tag, func(r *TagRecord) bool {
		own = false
		if !a.Deleted {
			for i, m := range r.Moves {
				if m.Digest == a.Digest && (m.Event == "" || m.Event == a.Event) {
					own = true
					changed := m.Event != a.Event
					r.Moves[i].Event = a.Event
					return changed
				}
			}
		}
		if a.At.Before(r.At) || a.Event != "" && a.Event == r.Event && a.Digest == r.Digest {
			return false // older, or the same announcement again
		}
		r.Digest, r.Event, r.At, r.Described = a.Digest, a.Event, a.At, ""
		if a.Deleted {
			r.Digest = ""
		}
		return true
	})
	if err != nil {
		return false, fmt.Errorf("record the announcement of %s/%s:%s: %w", a.Registry, a.Repository, a.Tag, err)
	}
	return own, nil
}

// Move records, before regscribe pushes described (the annotated manifest
// of pushed) by the tag, that it moves the tag there; when pushed is the
// push last announced, and event that announcement (or unknown: ""), it is
// now described. A move for an earlier announcement of the same manifest
// (pushed again while it was described) leaves the last one undescribed:
// the registry may link the tag to that push after this move, and its own
// job must see it. It returns the record as written.
func (t *Tags) Move(ctx context.Context, registry, repository, tag, pushed, event, described string) (TagRecord, error) {
	var out TagRecord
	err := t.update(ctx, registry, repository, tag, func(r *TagRecord) bool {
		if r.Digest == pushed && (event == "" || r.Event == "" || r.Event == event) {
			r.Described = described
		}
		r.Moves = append(slices.DeleteFunc(r.Moves, func(m TagMove) bool { return m.Digest == described && m.Event == "" }),
			TagMove{Digest: described})
		if len(r.Moves) > maxMoves {
			r.Moves = r.Moves[len(r.Moves)-maxMoves:]
		}
		out = *r
		return true
	})
	if err != nil {
		return out, fmt.Errorf("record the tag move of %s/%s:%s to %s: %w", registry, repository, tag, described, err)
	}
	return out, nil
}

// update applies change to the record of a tag (a fresh one if none) and
// writes it if change says so, compare-and-swap on the key's revision,
// trying again (a few times) while other writers get there first.
//
// The first try starts from the record Tags holds (see [Tags]), a fresh
// one if it holds none; a conflict reads the record and tries again. A
// change that writes nothing is decided on a record read, never on one
// held.
func (t *Tags) update(ctx context.Context, registry, repository, tag string, change func(*TagRecord) bool) error {
	key := tagKey(registry, repository, tag)
	held := true
	for try := 1; ; try++ {
		var (
			r   TagRecord
			rev uint64
			err error
		)
		if k, ok := t.known.Get(key); held && ok {
			r, rev = k.rec, k.rev
			r.Moves = slices.Clone(r.Moves) // change must not touch the one held
		} else if !held {
			if r, rev, _, err = t.get(ctx, key); err != nil {
				return err
			}
		}
		r.Registry, r.Repository, r.Tag = registry, repository, tag
		if !change(&r) {
			if held {
				held = false // unchanged on what is held: decide on the record
				continue
			}
			return nil
		}
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		var written uint64
		if rev == 0 {
			written, err = t.kv.Create(ctx, key, data)
		} else {
			written, err = t.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			t.remember(key, r, written)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
		if !held && try >= maxConflicts {
			return fmt.Errorf("%d writers got there first: %w", try, err)
		}
		held = false
	}
}
