package index

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/feed"
)

// The gallery's list: every photo, newest first, whatever its state. A
// described photo is its entry (one per photo: a person's description if
// any, else the newest); a manifest announced and not described yet
// (queued, or its job given up) is kept, with the reason, in the bucket
// [bucketWaiting] of the history file, like a refusal, and shown as one
// photo until a description (or a refusal, or a deletion) of it arrives.
var bucketWaiting = []byte("waiting")

// State is where a photo of the gallery is on its way to a description.
type State string

// The states of a photo.
const (
	// StateDescribed: the photo has a description.
	StateDescribed State = "described"
	// StateQueued: its push was announced and its job is queued (or in
	// flight): a worker describes it once the model answers.
	StateQueued State = "queued"
	// StateFailed: a worker gave its job up; Reason says why.
	StateFailed State = "failed"
	// StateRefused: a worker read the manifest and found no photo to
	// describe (not an image); Reason says why.
	StateRefused State = "refused"
)

// Waiting is a manifest announced and not described: queued, or failed.
type Waiting struct {
	Registry   string    `json:"registry"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tags       []string  `json:"tags,omitempty"`
	State      State     `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	At         time.Time `json:"at"`
}

// Tile is one photo of the gallery's list. A described photo is its entry
// (State StateDescribed); any other is a manifest, with Registry,
// Repository, Digest, Manifest (the same), Tags and Created (when it was
// announced, or refused) set, and Reason when it failed or was refused.
type Tile struct {
	Entry
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// await records the announcement (queued) or failure of the manifest key,
// unless it is described or refused already: the event came late.
func (w *writer) await(key string, e feed.Event) {
	st := w.ix.state
	if mf := st.manifests[key]; mf != nil && len(mf.docs) > 0 {
		return
	}
	if _, ok := st.refused[key]; ok {
		return
	}
	state, reason := StateQueued, ""
	if e.Kind == feed.Failed {
		state, reason = StateFailed, e.Reason
	}
	w.wait(key, &Waiting{Registry: e.Registry, Repository: e.Repository, Digest: e.Digest,
		Tags: st.mergeTags(st.waiting[key].Tags, e.Tags), State: state, Reason: reason, At: e.At.UTC()})
}

// wait records (r not nil) or forgets (nil) the manifest key as waiting,
// in the state and in the batch's history changes.
func (w *writer) wait(key string, r *Waiting) { setRecord(w.ix.state.waiting, w.waits, key, r) }

// tileCache is the gallery's list in order, made again only when a batch
// was written since.
type tileCache struct {
	state   *state
	changes uint64
	tiles   []tileRef
}

// tileRef is one tile of the list: an entry (id), or a manifest waiting or
// refused (key).
type tileRef struct {
	repo  string // registry/repository, interned
	at    int64  // Unix seconds
	state State
	id    docKey
	key   string
}

func compareTiles(a, b tileRef) int {
	return cmp.Or(cmp.Compare(b.at, a.at), strings.Compare(a.key, b.key), bytes.Compare(a.id[:], b.id[:]))
}

// list returns the gallery's list in order. The caller holds ix.mu.
func (ix *Index) list() []tileRef {
	c := &ix.tiles
	if c.state == ix.state && c.changes == ix.changes && c.tiles != nil {
		return c.tiles
	}
	st := ix.state
	type photo struct {
		repo  string
		layer [16]byte
	}
	type shown struct {
		id      docKey
		person  bool
		created int64
	}
	best := make(map[photo]shown, len(st.docs))
	for id, m := range st.docs {
		k := photo{m.repo, m.layer}
		s, ok := best[k]
		c := shown{id: id, person: m.person, created: m.created}
		if !ok || (c.person && !s.person) || (c.person == s.person && (c.created > s.created || c.created == s.created && bytes.Compare(c.id[:], s.id[:]) < 0)) {
			best[k] = c
		}
	}
	out := make([]tileRef, 0, len(best)+len(st.waiting)+len(st.refused))
	for k, s := range best {
		out = append(out, tileRef{repo: k.repo, at: s.created, state: StateDescribed, id: s.id})
	}
	for key, w := range st.waiting {
		if mf := st.manifests[key]; mf != nil && len(mf.docs) > 0 {
			continue
		}
		out = append(out, tileRef{repo: st.intern(w.Registry + "/" + w.Repository), at: w.At.Unix(), state: w.State, key: key})
	}
	for key, r := range st.refused {
		out = append(out, tileRef{repo: st.intern(r.Registry + "/" + r.Repository), at: r.At.Unix(), state: StateRefused, key: key})
	}
	slices.SortFunc(out, compareTiles)
	*c = tileCache{state: st, changes: ix.changes, tiles: out}
	return out
}

// Tiles lists the gallery's photos, newest first, whatever their state
// (described, queued, failed, not an image), and how many there are: of
// one repository when repository is set, of one registry when registry is
// set, else every one. At most limit (DefaultLimit when not positive) from
// offset.
func (ix *Index) Tiles(ctx context.Context, registry, repository string, offset, limit int) ([]Tile, int, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	offset = max(offset, 0)
	ix.mu.Lock()
	all := ix.list()
	var page []tileRef
	total := 0
	switch {
	case registry == "" && repository == "":
		total = len(all)
		page = slices.Clone(all[min(offset, total):min(total, offset+limit)])
	default:
		prefix := registry + "/"
		want := registry + "/" + repository
		for _, t := range all {
			if repository != "" && t.repo != want || repository == "" && !strings.HasPrefix(t.repo, prefix) {
				continue
			}
			if total >= offset && len(page) < limit {
				page = append(page, t)
			}
			total++
		}
	}
	out := make([]Tile, 0, len(page))
	var ids []string
	for _, t := range page {
		switch t.state {
		case StateDescribed:
			ids = append(ids, t.id.String())
			out = append(out, Tile{State: StateDescribed})
		case StateRefused:
			r, ok := ix.state.refused[t.key]
			if !ok {
				continue
			}
			out = append(out, Tile{Entry: manifestEntry(r.Registry, r.Repository, r.Digest, r.Tags, r.At), State: StateRefused, Reason: r.Reason})
		default:
			w, ok := ix.state.waiting[t.key]
			if !ok {
				continue
			}
			out = append(out, Tile{Entry: manifestEntry(w.Registry, w.Repository, w.Digest, w.Tags, w.At), State: w.State, Reason: w.Reason})
		}
	}
	ix.mu.Unlock()
	docs, err := ix.docs(ids)
	if err != nil {
		return nil, 0, err
	}
	i := 0
	kept := out[:0]
	for _, t := range out {
		if t.State == StateDescribed {
			d := docs[ids[i]]
			i++
			if d == nil {
				continue
			}
			t.Entry = d.entry()
		}
		kept = append(kept, t)
	}
	return kept, total, ctx.Err()
}

// Waiting returns the tile of a manifest that is not described: waiting
// (queued or failed) or refused; ok is false when it is neither.
func (ix *Index) Waiting(ctx context.Context, registry, repository, digest string) (Tile, bool, error) {
	key := manifestKey(registry, repository, digest)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if w, ok := ix.state.waiting[key]; ok {
		return Tile{Entry: manifestEntry(w.Registry, w.Repository, w.Digest, w.Tags, w.At), State: w.State, Reason: w.Reason}, true, ctx.Err()
	}
	if r, ok := ix.state.refused[key]; ok {
		return Tile{Entry: manifestEntry(r.Registry, r.Repository, r.Digest, r.Tags, r.At), State: StateRefused, Reason: r.Reason}, true, ctx.Err()
	}
	return Tile{}, false, ctx.Err()
}

func manifestEntry(registry, repository, digest string, tags []string, at time.Time) Entry {
	return Entry{Registry: registry, Repository: repository, Digest: digest, Manifest: digest, Tags: tags, Created: at}
}
