package index

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regscribe/regscribe/internal/feed"
)

// The history: annotation entries superseded by a re-pushed manifest (a
// person's correction, another model's description) are kept, for the
// photo page, in [historyFile] beside bleve, never in bleve: they are not
// searched, counted or embedded, and cost a search nothing. Supersession
// links (manifest → the manifest that replaced it) chain a photo's
// manifests, so the history of the current one reaches back through every
// correction.
const historyFile = "history.db"

// Buckets of the history file: entries by id (the doc as JSON), and links
// keyed "from\x00to" (manifest keys) with the time as Unix nanoseconds.
var (
	bucketEntries = []byte("entries")
	bucketLinks   = []byte("links")
)

// openHistory opens (or creates) the history file in dir.
func openHistory(dir string) (*bolt.DB, error) {
	path := filepath.Join(dir, historyFile)
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntries, bucketLinks, bucketRefused, bucketWaiting} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	return db, nil
}

// history is what writers know about the superseded entries and the
// links between manifests, without reading them back.
type history struct {
	entries map[docKey]hentry
	of      map[string][]docKey // manifest key → its superseded entries
	next    map[string][]link   // manifest key → the manifests that superseded it
	prev    map[string][]string // manifest key → the manifests it superseded
}

// hentry is what writers know about one superseded entry.
type hentry struct {
	carrier string // the manifest key of its Digest, interned
	layer   [16]byte
	hash    [8]byte
}

// link says that a manifest was superseded by to (a manifest key) at at
// (Unix nanoseconds).
type link struct {
	to string
	at int64
	// listed are the photos (layer keys, [layerKey]) the superseding event
	// listed: their descriptions were replaced; the manifest's other photos
	// were carried over to to unchanged. nil: every photo (a link stored
	// before the listings were kept).
	listed [][16]byte
}

// lists reports whether the superseding event listed the photo layer.
func (l link) lists(layer [16]byte) bool { return l.listed == nil || slices.Contains(l.listed, layer) }

// listedLayers is the photo layers (layer keys) e lists, without repeats;
// never nil.
func listedLayers(e feed.Event) [][16]byte {
	out := [][16]byte{}
	for _, p := range e.Photos {
		if k := layerKey(p.Layer); p.Layer != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func newHistory() history {
	return history{entries: map[docKey]hentry{}, of: map[string][]docKey{}, next: map[string][]link{}, prev: map[string][]string{}}
}

// keep records d as superseded entry id.
func (s *state) keep(id docKey, d *doc) {
	s.unkeep(id)
	h := hentry{carrier: s.intern(manifestKey(d.Registry, d.Repository, d.Digest)), layer: layerKey(d.Layer), hash: d.hashKey()}
	s.hist.entries[id] = h
	s.hist.of[h.carrier] = append(s.hist.of[h.carrier], id)
}

// unkeep forgets superseded entry id and reports whether it was one.
func (s *state) unkeep(id docKey) bool {
	h, ok := s.hist.entries[id]
	if !ok {
		return false
	}
	delete(s.hist.entries, id)
	if ids := slices.DeleteFunc(s.hist.of[h.carrier], func(k docKey) bool { return k == id }); len(ids) > 0 {
		s.hist.of[h.carrier] = ids
	} else {
		delete(s.hist.of, h.carrier)
	}
	return true
}

// link records that manifest from was superseded by to, listing the
// photos listed; false if known.
func (s *state) link(from, to string, at int64, listed [][16]byte) bool {
	if slices.ContainsFunc(s.hist.next[from], func(l link) bool { return l.to == to }) {
		return false
	}
	from, to = s.intern(from), s.intern(to)
	s.hist.next[from] = append(s.hist.next[from], link{to: to, at: at, listed: listed})
	s.hist.prev[to] = append(s.hist.prev[to], from)
	return true
}

// unlink forgets that from was superseded by to; false if unknown.
func (s *state) unlink(from, to string) bool {
	n := len(s.hist.next[from])
	next := slices.DeleteFunc(s.hist.next[from], func(l link) bool { return l.to == to })
	if len(next) == n {
		return false
	}
	if len(next) == 0 {
		delete(s.hist.next, from)
	} else {
		s.hist.next[from] = next
	}
	if prev := slices.DeleteFunc(s.hist.prev[to], func(k string) bool { return k == from }); len(prev) > 0 {
		s.hist.prev[to] = prev
	} else {
		delete(s.hist.prev, to)
	}
	return true
}

// chain is keys and every manifest they superseded, directly or through
// others.
func (s *state) chain(keys ...string) []string {
	seen := map[string]bool{}
	var out []string
	for len(keys) > 0 {
		k := keys[0]
		keys = keys[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
		keys = append(keys, s.hist.prev[k]...)
	}
	return out
}

// successor is the manifest that superseded key last, and after made
// (Unix nanoseconds); ok is false when none did.
func (s *state) successor(key string, made int64) (l link, ok bool) {
	for _, n := range s.hist.next[key] {
		if n.at > made && n.at > l.at {
			l = n
		}
	}
	return l, l.to != ""
}

// knows reports whether key is a manifest the history has heard of.
func (h *history) knows(key string) bool {
	return len(h.of[key]) > 0 || len(h.next[key]) > 0 || len(h.prev[key]) > 0
}

// digestOf is the digest of a manifest key.
func digestOf(key string) string { return key[strings.LastIndex(key, "@")+1:] }

// linkOp is a change of a link for the history file.
type linkOp struct {
	at      int64
	listed  [][16]byte
	removed bool
}

// A link's value in the history file: its time (8 bytes, big endian), then
// linkListed and the listed layer keys (16 bytes each); a value of 8 bytes
// (written before the listings were kept) lists every photo.
const linkListed = 'L'

func encodeLink(op linkOp) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(op.at))
	if op.listed == nil {
		return v
	}
	v = append(v, linkListed)
	for _, k := range op.listed {
		v = append(v, k[:]...)
	}
	return v
}

func decodeLink(v []byte) (at int64, listed [][16]byte, ok bool) {
	if len(v) < 8 {
		return 0, nil, false
	}
	at, rest := int64(binary.BigEndian.Uint64(v)), v[8:]
	if len(rest) == 0 {
		return at, nil, true
	}
	if rest[0] != linkListed || (len(rest)-1)%16 != 0 {
		return 0, nil, false
	}
	listed = make([][16]byte, 0, (len(rest)-1)/16)
	for k := rest[1:]; len(k) > 0; k = k[16:] {
		listed = append(listed, [16]byte(k[:16]))
	}
	return at, listed, true
}

// supersede moves entry id to the history: replaced at at by the manifest
// by (a digest).
func (w *writer) supersede(id docKey, by string, at time.Time) error {
	d, err := w.load(id)
	if err != nil {
		return err
	}
	w.remove(id)
	if d == nil {
		return nil
	}
	d.Superseded, d.SupersededBy = at.UTC(), by
	d.seal()
	w.keep(id, d)
	return nil
}

// maxCarry bounds how many manifests one description is carried through
// (the links' times grow along a chain, so it ends anyway).
const maxCarry = 64

// settle writes d, a current annotation description of manifest d.Digest
// as of made (Unix nanoseconds), where it belongs now: current there; or,
// when a manifest superseded d.Digest after made, in the history when that
// manifest's event listed the photo, else carried over to that manifest
// unchanged, and settled there in turn.
func (w *writer) settle(d *doc, made int64) {
	st := w.ix.state
	for range maxCarry {
		l, ok := st.successor(manifestKey(d.Registry, d.Repository, d.Digest), made)
		if !ok {
			break
		}
		if l.lists(layerKey(d.Layer)) {
			d.Superseded, d.SupersededBy = time.Unix(0, l.at).UTC(), digestOf(l.to)
			d.seal()
			w.keep(d.id(), d)
			return
		}
		d, made = st.carried(d, digestOf(l.to)), l.at
	}
	d.seal()
	id := d.id()
	if m, ok := st.docs[id]; ok && m.hash == d.hashKey() {
		return
	}
	w.put(id, d)
}

// carried is d carried over unchanged to the manifest to, which replaced
// its own: it takes to's tags, and keeps its child manifest (an album's
// child not pushed again); the photo of an image manifest is now to's.
func (s *state) carried(d *doc, to string) *doc {
	c := *d
	if c.Manifest == "" || c.Manifest == c.Digest {
		c.Manifest = to
	}
	c.From = cmp.Or(c.From, c.Digest)
	c.Digest, c.Indexed = to, time.Now().UTC()
	c.Tags = nil
	if mf := s.manifests[manifestKey(c.Registry, c.Repository, to)]; mf != nil {
		c.Tags = mf.tags
	}
	return &c
}

// keep stores d as superseded entry id (nothing when it is there already).
func (w *writer) keep(id docKey, d *doc) {
	if h, ok := w.ix.state.hist.entries[id]; ok && h.hash == d.hashKey() {
		return
	}
	w.hist[id] = d
	w.ix.state.keep(id, d)
}

// unkeep removes superseded entry id, if it is one.
func (w *writer) unkeep(id docKey) {
	if w.ix.state.unkeep(id) {
		w.hist[id] = nil
	}
}

func (w *writer) link(from, to string, at time.Time, listed [][16]byte) {
	if w.ix.state.link(from, to, at.UnixNano(), listed) {
		w.links[[2]string{from, to}] = linkOp{at: at.UnixNano(), listed: listed}
	}
}

func (w *writer) unlink(from, to string) {
	if w.ix.state.unlink(from, to) {
		w.links[[2]string{from, to}] = linkOp{removed: true}
	}
}

// forget removes the history a deleted manifest takes with it: its own
// superseded entries; and, when it was the current manifest (nothing
// superseded it), every manifest it superseded, through the whole chain,
// with their entries (a manifest that another, live, manifest also
// superseded keeps its entries).
func (w *writer) forget(key string) {
	h := &w.ix.state.hist
	for _, id := range slices.Clone(h.of[key]) {
		w.unkeep(id)
	}
	if len(h.next[key]) > 0 {
		return // an old manifest: the chain through it stays
	}
	todo := []string{key}
	for len(todo) > 0 {
		succ := todo[0]
		todo = todo[1:]
		for _, anc := range slices.Clone(h.prev[succ]) {
			w.unlink(anc, succ)
			if len(h.next[anc]) > 0 {
				continue
			}
			for _, id := range slices.Clone(h.of[anc]) {
				w.unkeep(id)
			}
			todo = append(todo, anc)
		}
	}
}

// saveHistory writes the writer's history changes, and its refusals, in
// one transaction.
func (ix *Index) saveHistory(entries map[docKey]*doc, links map[[2]string]linkOp, refusals map[string]*Refusal, waits map[string]*Waiting) error {
	return ix.hdb.Update(func(tx *bolt.Tx) error {
		if err := saveRecords(tx, bucketRefused, refusals); err != nil {
			return err
		}
		if err := saveRecords(tx, bucketWaiting, waits); err != nil {
			return err
		}
		eb, lb := tx.Bucket(bucketEntries), tx.Bucket(bucketLinks)
		for id, d := range entries {
			if d == nil {
				if err := eb.Delete(id[:]); err != nil {
					return err
				}
				continue
			}
			src, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := eb.Put(id[:], src); err != nil {
				return err
			}
		}
		for k, op := range links {
			key := []byte(k[0] + "\x00" + k[1])
			if op.removed {
				if err := lb.Delete(key); err != nil {
					return err
				}
				continue
			}
			if err := lb.Put(key, encodeLink(op)); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadHistory reads what writers know about the history into s.
func loadHistory(db *bolt.DB, s *state) error {
	err := db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			var d doc
			if len(k) != len(docKey{}) || json.Unmarshal(v, &d) != nil {
				return fmt.Errorf("history entry %x is unreadable; delete the index directory to rebuild it from the stream", k)
			}
			s.keep(docKey(k), &d)
			return nil
		})
		if err != nil {
			return err
		}
		if err := loadRecords(tx, bucketRefused, s.refused); err != nil {
			return err
		}
		if err := loadRecords(tx, bucketWaiting, s.waiting); err != nil {
			return err
		}
		return tx.Bucket(bucketLinks).ForEach(func(k, v []byte) error {
			from, to, ok := strings.Cut(string(k), "\x00")
			at, listed, valid := decodeLink(v)
			if !ok || !valid {
				return fmt.Errorf("history link %q is unreadable; delete the index directory to rebuild it from the stream", k)
			}
			s.link(from, to, at, listed)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("index: read history: %w", err)
	}
	return nil
}

// historyIDs is the superseded entries of the manifests keys and of every
// manifest they superseded, of the photo layer only unless layer is nil,
// less those in current; most recently superseded first. The caller holds
// ix.mu.
func (ix *Index) historyIDs(keys []string, layer *[16]byte, current map[docKey]bool) []docKey {
	var ids []docKey
	for _, k := range ix.state.chain(keys...) {
		for _, id := range ix.state.hist.of[k] {
			if !current[id] && (layer == nil || ix.state.hist.entries[id].layer == *layer) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// historyDocs reads superseded entries, most recently superseded first.
func (ix *Index) historyDocs(ids []docKey) ([]*doc, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]*doc, 0, len(ids))
	err := ix.hdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		for _, id := range ids {
			var d doc
			if v := b.Get(id[:]); v != nil && json.Unmarshal(v, &d) == nil {
				out = append(out, &d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: read history: %w", err)
	}
	slices.SortFunc(out, func(a, b *doc) int {
		return cmp.Or(b.Superseded.Compare(a.Superseded), b.Created.Compare(a.Created), strings.Compare(a.Model, b.Model), strings.Compare(a.Layer, b.Layer))
	})
	return out, nil
}
