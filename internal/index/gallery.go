package index

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bindex "github.com/blevesearch/bleve_index_api"

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
// At is when it was announced (when it failed, if its announcement was
// not seen).
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
// unless it is described, replaced by a described copy (annotation mode)
// or refused already: the event came late.
func (w *writer) await(key string, e feed.Event) {
	st := w.ix.state
	if mf := st.manifests[key]; mf != nil && len(mf.docs) > 0 {
		return
	}
	if len(st.hist.next[key]) > 0 {
		return
	}
	if _, ok := st.refused[key]; ok {
		return
	}
	state, reason := StateQueued, ""
	if e.Kind == feed.Failed {
		state, reason = StateFailed, e.Reason
	}
	at := e.At.UTC()
	if old, ok := st.waiting[key]; ok {
		at = old.At // it keeps its place in the grid (when it was pushed): failed, or queued again
	}
	w.wait(key, &Waiting{Registry: e.Registry, Repository: e.Repository, Digest: e.Digest,
		Tags: st.mergeTags(st.waiting[key].Tags, e.Tags), State: state, Reason: reason, At: at})
}

// wait records (r not nil) or forgets (nil) the manifest key as waiting,
// in the state and in the batch's history changes.
func (w *writer) wait(key string, r *Waiting) {
	setRecord(w.ix.state.waiting, w.waits, key, r)
	w.ix.state.changed[tileID{key: key}] = struct{}{}
}

// photoKey is a photo of the gallery: a layer of a repository.
type photoKey struct {
	repo  string // registry/repository, interned
	layer [16]byte
}

// tileID names a tile of the gallery's list: a photo (key empty), or a
// manifest waiting or refused (key its manifest key).
type tileID struct {
	photo photoKey
	key   string
}

// addPhoto and dropPhoto keep the entries of each photo, and note the
// tiles they change: the photo's, and its manifest's (a manifest with an
// entry is not shown as waiting).
func (s *state) addPhoto(m meta, id docKey) {
	pk := photoKey{m.repo, m.layer}
	if !slices.Contains(s.photos[pk], id) {
		s.photos[pk] = append(s.photos[pk], id)
	}
	s.changed[tileID{photo: pk}] = struct{}{}
	s.changed[tileID{key: m.digest.key}] = struct{}{}
}

func (s *state) dropPhoto(m meta, id docKey) {
	pk := photoKey{m.repo, m.layer}
	ids := slices.DeleteFunc(s.photos[pk], func(x docKey) bool { return x == id })
	if len(ids) == 0 {
		delete(s.photos, pk)
	} else {
		s.photos[pk] = ids
	}
	s.changed[tileID{photo: pk}] = struct{}{}
	s.changed[tileID{key: m.digest.key}] = struct{}{}
}

// tileCache is the gallery's list in order, and each tile by its id:
// changed tiles are moved in place, the list is made again only for a
// new state or many changes.
type tileCache struct {
	state *state
	tiles []tileRef
	byID  map[tileID]tileRef
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

// maxMoves is how many changed tiles are moved in place; more, and the
// list is made again.
const maxMoves = 5000

// tile is the tile of id as the state says (ok false: none).
func (st *state) tile(id tileID) (tileRef, bool) {
	if id.key == "" {
		var best tileRef
		var bestPerson bool
		for _, d := range st.photos[id.photo] {
			m := st.docs[d]
			c := tileRef{repo: m.repo, at: m.created, state: StateDescribed, id: d}
			if best.repo == "" || (m.person && !bestPerson) ||
				(m.person == bestPerson && (c.at > best.at || c.at == best.at && bytes.Compare(c.id[:], best.id[:]) < 0)) {
				best, bestPerson = c, m.person
			}
		}
		return best, best.repo != ""
	}
	if w, ok := st.waiting[id.key]; ok {
		if mf := st.manifests[id.key]; mf == nil || len(mf.docs) == 0 {
			return tileRef{repo: st.intern(w.Registry + "/" + w.Repository), at: w.At.Unix(), state: w.State, key: id.key}, true
		}
	}
	if r, ok := st.refused[id.key]; ok {
		return tileRef{repo: st.intern(r.Registry + "/" + r.Repository), at: r.At.Unix(), state: StateRefused, key: id.key}, true
	}
	return tileRef{}, false
}

// list returns the gallery's list in order. The caller holds ix.mu.
func (ix *Index) list() []tileRef {
	st, c := ix.state, &ix.tiles
	if c.state == st && len(st.changed) <= maxMoves {
		for id := range st.changed {
			if old, ok := c.byID[id]; ok {
				if i, found := slices.BinarySearchFunc(c.tiles, old, compareTiles); found {
					c.tiles = slices.Delete(c.tiles, i, i+1)
				}
				delete(c.byID, id)
			}
			if t, ok := st.tile(id); ok {
				i, _ := slices.BinarySearchFunc(c.tiles, t, compareTiles)
				c.tiles = slices.Insert(c.tiles, i, t)
				c.byID[id] = t
			}
		}
		clear(st.changed)
		return c.tiles
	}
	ids := make([]tileID, 0, len(st.photos)+len(st.waiting)+len(st.refused))
	for pk := range st.photos {
		ids = append(ids, tileID{photo: pk})
	}
	for key := range st.waiting {
		ids = append(ids, tileID{key: key})
	}
	for key := range st.refused {
		if _, ok := st.waiting[key]; !ok {
			ids = append(ids, tileID{key: key})
		}
	}
	*c = tileCache{state: st, tiles: make([]tileRef, 0, len(ids)), byID: make(map[tileID]tileRef, len(ids))}
	for _, id := range ids {
		if t, ok := st.tile(id); ok {
			c.tiles = append(c.tiles, t)
			c.byID[id] = t
		}
	}
	slices.SortFunc(c.tiles, compareTiles)
	clear(st.changed)
	return c.tiles
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
	docs, err := ix.stored(ids)
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

// stored reads the entries ids by id, one look-up each: for a page of the
// grid, cheaper than a search for them in a large index.
func (ix *Index) stored(ids []string) (map[string]*doc, error) {
	out := make(map[string]*doc, len(ids))
	for _, id := range ids {
		bd, err := ix.bi.Document(id)
		if err != nil {
			return nil, fmt.Errorf("index: read entry %s: %w", id, err)
		}
		if bd == nil {
			continue
		}
		bd.VisitFields(func(f bindex.Field) {
			if f.Name() != fSource {
				return
			}
			var d doc
			if json.Unmarshal(f.Value(), &d) == nil {
				out[id] = &d
			}
		})
	}
	return out, nil
}
