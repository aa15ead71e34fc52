package index

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/regscribe/regscribe/internal/feed"
)

// Apply adds, replaces or removes entries as one event says, and commits
// at once. Applying an event twice changes nothing. The event's registry
// is taken by its canonical name (Options.Registry).
//
//   - written and found replace the describer's entries of the manifest:
//     one per photo listed, and the entries of photos no longer listed
//     are removed (not those carried over to it, below); with Replaces (a
//     manifest re-pushed with annotations, a copy of the replaced one with
//     some descriptions changed), the superseded manifest's annotation
//     entries of the photos the event lists (by layer digest) leave search
//     for the history (marked superseded at the event's time by its
//     digest; see [Index.Photo]), those of the photos it does not list
//     (unchanged; an album's child not pushed again keeps its child
//     manifest) are carried over to the new manifest and stay current, and
//     its tags are carried over; the annotation entries of an event made
//     before its manifest was superseded (applied again, or found later)
//     go to the history at once, or are carried over at once when the
//     manifest that superseded it did not list their photos;
//   - deleted removes every entry of the manifest, by every describer, and
//     the entries of photos it held (an album's children); its superseded
//     entries; and when it was the current manifest, the history of every
//     manifest it superseded;
//   - refused keeps the manifest's refusal (why it holds no photo) out of
//     search, counted per repository ([Repository.Refused]) and listed
//     ([Index.Refusals]); a deletion or a description of the manifest
//     (or of a manifest that replaces it) removes it;
//   - untagged takes its tag off every manifest of the repository;
//   - tags are merged per manifest: every entry of a manifest carries every
//     tag an event reported for it, until an untagged event takes it off or
//     an event reports it for another manifest of the repository (a tag
//     names one manifest: the one described last at it). An event older than
//     a supersession of its manifest reports no tags.
func (ix *Index) Apply(ctx context.Context, e feed.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	e = ix.canonical(e)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	w := ix.newWriter()
	if err := w.apply(e); err != nil {
		w.abandon()
		return err
	}
	return w.commit()
}

// writer applies events to one batch. Its owner holds ix.mu.
type writer struct {
	ix      *Index
	b       *bleve.Batch
	pending map[docKey]*doc // docs indexed in this batch
	added   map[docKey]textKey
	dropped map[docKey]bool
	touched []*manifest // manifests that lost entries in the event being applied
	// hist and links are the history's changes: superseded entries to
	// store (nil: to delete) and links.
	hist  map[docKey]*doc
	links map[[2]string]linkOp
	// refusals are the refusal changes (nil: removed), by manifest key.
	refusals map[string]*Refusal
	// waits are the changes of the manifests waiting (nil: removed).
	waits map[string]*Waiting
}

func (ix *Index) newWriter() *writer {
	return &writer{ix: ix, b: ix.bi.NewBatch(), pending: map[docKey]*doc{}, added: map[docKey]textKey{}, dropped: map[docKey]bool{},
		hist: map[docKey]*doc{}, links: map[[2]string]linkOp{}, refusals: map[string]*Refusal{}, waits: map[string]*Waiting{}}
}

// size is how many operations the batch holds.
func (w *writer) size() int { return w.b.Size() }

func (w *writer) apply(e feed.Event) error {
	st := w.ix.state
	key := manifestKey(e.Registry, e.Repository, e.Digest)
	switch e.Kind {
	case feed.Untagged:
		return w.untag(e.Registry, e.Repository, e.Tags[0], nil)
	case feed.Queued, feed.Failed:
		w.await(key, e)
		return nil
	case feed.Skipped:
		w.wait(key, nil) // nothing to show
		return nil
	case feed.Refused:
		// Out of search: counted and listed only, with the tags known.
		w.refuse(key, refusalOf(e, st.mergeTags(st.refused[key].Tags, e.Tags)))
		w.wait(key, nil)
		return nil
	default:
		w.refuse(key, nil) // deleted, or described after all
		w.wait(key, nil)
		if e.Kind != feed.Deleted && e.Replaces != "" {
			// Re-pushed with a description: the manifest it replaces is
			// no refusal either, nor waiting.
			w.refuse(manifestKey(e.Registry, e.Repository, e.Replaces), nil)
			w.wait(manifestKey(e.Registry, e.Repository, e.Replaces), nil)
		}
	}
	if e.Kind == feed.Deleted {
		if mf := st.manifests[key]; mf != nil {
			for _, id := range mf.sorted() {
				w.remove(id)
			}
			st.setTags(mf, nil)
		}
		delete(st.manifests, key)
		w.forget(key)
		st.tidy(w.touched...)
		w.touched = w.touched[:0]
		return nil
	}
	// An event older than a supersession of its manifest (applied again,
	// or found by reprocess later) brings history, not current entries,
	// and no tags: they moved on.
	made := madeAt(e).UnixNano()
	late, _ := st.successor(key, made)
	mf := st.manifest(key)
	tags := mf.tags
	if late.to == "" {
		tags = st.mergeTags(mf.tags, e.Tags)
	}
	now := time.Now().UTC()
	var carry []*doc // the replaced manifest's descriptions of photos the event does not list
	at := cmp.Or(e.At, now)
	if e.Replaces != "" && e.Replaces != e.Digest {
		rkey := manifestKey(e.Registry, e.Repository, e.Replaces)
		l := link{to: key, at: at.UnixNano(), listed: listedLayers(e)}
		w.link(rkey, key, at, l.listed)
		if old := st.manifests[rkey]; old != nil {
			// The tags moved to the re-pushed manifest with the annotations.
			tags = st.mergeTags(tags, old.tags)
			moved := len(old.tags) > 0
			st.setTags(old, nil)
			for _, id := range old.sorted() {
				m, ok := st.docs[id]
				switch {
				case !ok || m.digest != old:
				case m.annotation && l.lists(m.layer):
					if err := w.supersede(id, e.Digest, at); err != nil {
						return err
					}
				case m.annotation:
					// A photo the write-back left as it was: its description
					// is the re-pushed manifest's now.
					d, err := w.load(id)
					if err != nil {
						return err
					}
					w.remove(id)
					if d != nil {
						carry = append(carry, st.carried(d, e.Digest))
					}
				case moved:
					if err := w.retag(id, nil, now); err != nil {
						return err
					}
				}
			}
			w.touched = append(w.touched, old)
		}
	}
	if late.to == "" {
		// A tag names one manifest: the tags this event reports for its
		// manifest are no longer those of the repository's others.
		for _, t := range e.Tags {
			if err := w.untag(e.Registry, e.Repository, t, mf); err != nil {
				return err
			}
		}
	}
	tagsChanged := !slices.Equal(tags, mf.tags)
	st.setTags(mf, tags)
	for _, d := range carry {
		d.Tags = tags
		w.settle(d, at.UnixNano())
	}

	keep := map[docKey]bool{}
	for _, p := range e.Photos {
		if p.Layer == "" {
			w.ix.log.Warn("description event names a photo without a layer digest; that photo is left out", "ref", e.Ref(), "by", e.By)
			continue
		}
		d := &doc{Entry: Entry{
			Registry: e.Registry, Repository: e.Repository, Digest: e.Digest, Manifest: p.Manifest, Layer: p.Layer,
			MediaType: p.MediaType, Tags: tags, Title: p.Title, Description: p.Description, Alt: p.Alt,
			Keywords: p.Keywords, Text: p.Text, Model: p.Model, Created: p.Created.UTC(), Stored: p.Stored,
		}, By: e.By, Indexed: now}
		if d.Manifest == "" {
			d.Manifest = e.Digest
		}
		if d.Model == "" {
			d.Model = e.By
		}
		if d.Created.IsZero() {
			d.Created = e.At.UTC()
		}
		d.seal()
		id := d.id()
		if late.to != "" && d.Stored == "annotation" {
			// Not kept: an entry of it in search is removed below. It is
			// history, or carried over when the manifest that superseded
			// this one left its photo as it was.
			w.settle(d, made)
			continue
		}
		keep[id] = true
		if m, ok := st.docs[id]; ok && m.hash == d.hashKey() {
			continue
		}
		w.put(id, d)
	}
	for _, id := range mf.sorted() {
		m, ok := st.docs[id]
		if !ok || keep[id] || m.digest != mf {
			continue
		}
		if m.by == e.By && !m.carried {
			w.remove(id)
			continue
		}
		if tagsChanged {
			if err := w.retag(id, tags, now); err != nil {
				return err
			}
		}
	}
	st.tidy(append(w.touched, mf)...)
	w.touched = w.touched[:0]
	return nil
}

// untag takes tag off every manifest of the repository but except (nil:
// every one), and off their entries.
func (w *writer) untag(registry, repository, tag string, except *manifest) error {
	st := w.ix.state
	now := time.Now().UTC()
	var changed []*manifest
	for _, mf := range st.carrying(manifestKey(registry, repository, ""), tag) {
		if mf == except {
			continue
		}
		changed = append(changed, mf)
		tags := slices.DeleteFunc(slices.Clone(mf.tags), func(t string) bool { return t == tag })
		if len(tags) == 0 {
			tags = nil
		}
		st.setTags(mf, tags)
		for _, id := range mf.sorted() {
			if m, ok := st.docs[id]; ok && m.digest == mf {
				if err := w.retag(id, mf.tags, now); err != nil {
					return err
				}
			}
		}
	}
	st.tidy(changed...)
	return nil
}

// madeAt is when an event's descriptions were made, to compare with when
// its manifest was superseded: a write's time; for found descriptions (read
// from the registry later), the newest description's, else the event's.
func madeAt(e feed.Event) time.Time {
	if e.Kind == feed.Written && !e.At.IsZero() {
		return e.At
	}
	var t time.Time
	for _, p := range e.Photos {
		if p.Created.After(t) {
			t = p.Created
		}
	}
	return cmp.Or(t, e.At)
}

// retag writes entry id again with tags.
func (w *writer) retag(id docKey, tags []string, now time.Time) error {
	d, err := w.load(id)
	if err != nil || d == nil || slices.Equal(d.Tags, tags) {
		return err
	}
	d.Tags, d.Indexed = tags, now
	d.seal()
	w.put(id, d)
	return nil
}

func (w *writer) put(id docKey, d *doc) {
	_ = w.b.Index(id.String(), d.indexed()) // only fails for an empty id
	w.pending[id] = d
	w.added[id], _ = parseTextKey(d.VKey)
	delete(w.dropped, id)
	w.ix.state.put(id, d)
	w.unkeep(id) // current again: no longer history
}

func (w *writer) remove(id docKey) {
	w.b.Delete(id.String())
	delete(w.pending, id)
	delete(w.added, id)
	w.dropped[id] = true
	if m, ok := w.ix.state.remove(id); ok {
		w.touched = append(w.touched, m.digest, m.child)
	}
}

// load reads entry id as it stands: from this batch, else from the index.
func (w *writer) load(id docKey) (*doc, error) {
	if d, ok := w.pending[id]; ok {
		c := *d
		return &c, nil
	}
	docs, err := w.ix.docs([]string{id.String()})
	if err != nil {
		return nil, err
	}
	return docs[id.String()], nil
}

// docs reads entries by id.
func (ix *Index) docs(ids []string) (map[string]*doc, error) {
	if len(ids) == 0 {
		return map[string]*doc{}, nil
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDocIDQuery(ids), len(ids), 0, false)
	req.Fields = []string{fSource}
	res, err := ix.bi.Search(req)
	if err != nil {
		return nil, fmt.Errorf("index: read entries: %w", err)
	}
	return hitDocs(res.Hits), nil
}

// commit writes the batch. On failure the writers' state is read again
// from the index, which holds none of the batch.
//
// The history is written first: when bleve then fails, the events are
// applied again and find their superseded entries there already.
func (w *writer) commit() error {
	w.ix.changes++
	if len(w.hist) > 0 || len(w.links) > 0 || len(w.refusals) > 0 || len(w.waits) > 0 {
		if err := w.ix.saveHistory(w.hist, w.links, w.refusals, w.waits); err != nil {
			w.abandon()
			return fmt.Errorf("index: write history: %w", err)
		}
	}
	if w.b.Size() == 0 {
		return nil
	}
	if err := w.ix.bi.Batch(w.b); err != nil {
		w.abandon()
		return fmt.Errorf("index: write: %w", err)
	}
	if v := w.ix.vec; v != nil {
		for id := range w.dropped {
			v.drop(id)
		}
		for id, vkey := range w.added {
			v.want(id, vkey)
		}
	}
	return nil
}

// abandon forgets the batch: the state is read again from the index.
func (w *writer) abandon() {
	w.ix.changes++
	st, err := loadState(w.ix.bi, w.ix.hdb)
	if err != nil {
		w.ix.log.Error("index: reading the entries again after a failed write: " + err.Error())
		return
	}
	w.ix.state = st
}

// describe names an event in logs.
func describe(e feed.Event) string {
	return strings.TrimSpace(string(e.Kind) + " " + e.Ref() + " by " + e.By)
}
