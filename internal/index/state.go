package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	bolt "go.etcd.io/bbolt"
)

// doc is what the index stores for one entry.
type doc struct {
	// Entry is what the API shows; its Superseded and SupersededBy are set
	// on a history entry.
	Entry
	// By is the describer of the event the entry came from (its id).
	By      string    `json:"by"`
	Indexed time.Time `json:"indexed"`
	// From is set on an entry carried over unchanged to a re-pushed
	// manifest that did not change its photo (an annotation-mode write-back
	// that changed other photos of the manifest or album): the digest of
	// the manifest the description was written into.
	From string `json:"from,omitempty"`
	// Hash identifies the content (all but Indexed): an event applied
	// again finds it unchanged and writes nothing.
	Hash string `json:"hash"`
	// VKey identifies the text that is embedded ([doc.embedText]).
	VKey string `json:"vkey"`
}

// indexed is what bleve indexes of a doc ([newMapping]): what text search
// and its filters need. The doc itself is stored whole, as JSON, in
// Source, the one stored field; entries are found by digest in the
// writers' state, not in bleve.
type indexed struct {
	Repository  string    `json:"repository"`
	Tags        []string  `json:"tags"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Alt         string    `json:"alt"`
	Keywords    []string  `json:"keywords"`
	Text        string    `json:"text"`
	Model       string    `json:"model"`
	Created     time.Time `json:"created"`
	Source      string    `json:"src"`
}

// indexed is d as bleve indexes it.
func (d *doc) indexed() *indexed {
	src, _ := json.Marshal(d)
	return &indexed{
		Repository: d.Repository, Tags: d.Tags, Title: d.Title, Description: d.Description, Alt: d.Alt,
		Keywords: d.Keywords, Text: d.Text, Model: d.Model, Created: d.Created, Source: string(src),
	}
}

// seal sets Hash and VKey from the content.
func (d *doc) seal() {
	c := *d
	c.Indexed, c.Hash, c.VKey = time.Time{}, "", ""
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	d.Hash = hex.EncodeToString(sum[:8])
	sum = sha256.Sum256([]byte(d.embedText()))
	d.VKey = hex.EncodeToString(sum[:16])
}

// hashKey is Hash as bytes.
func (d *doc) hashKey() [8]byte {
	var h [8]byte
	_, _ = hex.Decode(h[:], []byte(d.Hash))
	return h
}

// embedText is what is embedded for semantic search: what the photo shows,
// in every form the describer gave.
func (d *doc) embedText() string {
	parts := []string{d.Description, d.Alt, strings.Join(d.Keywords, ", "), d.Text}
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return strings.TrimSpace(s) == "" }), "\n")
}

// entry is the doc as the API shows it.
func (d *doc) entry() Entry {
	e := d.Entry
	e.Tags, e.Keywords = nonNil(e.Tags), nonNil(e.Keywords)
	return e
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// docFromFields reads a doc back from a hit's stored fields: the doc is
// stored whole, as JSON, in one field.
func docFromFields(f map[string]any) *doc {
	src, _ := f[fSource].(string)
	var d doc
	if err := json.Unmarshal([]byte(src), &d); err != nil {
		return nil
	}
	return &d
}

// id is the entry's id ([docID]).
func (d *doc) id() docKey {
	return docID(d.Registry, d.Repository, d.Digest, d.Manifest, d.Layer, d.By)
}

// docKey is an entry's id: 16 bytes, hex in bleve.
type docKey [16]byte

func (k docKey) String() string { return hex.EncodeToString(k[:]) }

func parseDocKey(s string) (docKey, bool) {
	var k docKey
	n, err := hex.Decode(k[:], []byte(s))
	return k, err == nil && n == len(k) && len(s) == 2*len(k)
}

// textKey identifies an embedded text ([doc.VKey], hex).
type textKey [16]byte

func (k textKey) String() string { return hex.EncodeToString(k[:]) }

func parseTextKey(s string) (textKey, bool) {
	k, ok := parseDocKey(s)
	return textKey(k), ok
}

// meta is what writers know about one entry without reading it back,
// packed: the strings it shares with other entries are interned, the
// digests it only compares are hashes.
type meta struct {
	repo    string    // registry/repository, interned
	by      string    // interned
	model   string    // interned
	digest  *manifest // the manifest carrying it
	child   *manifest // the image manifest holding its photo when that differs, else nil
	layer   [16]byte  // sha256 of the layer digest: tells photos apart
	hash    [8]byte   // doc.Hash
	vkey    textKey
	created int64
	// annotation: stored as annotations (superseded by a re-pushed
	// manifest); person: a person's description; carried: carried over to
	// its manifest from one it replaced ([doc.From]).
	annotation, person, carried bool
}

// repository is the entry's repository, without its registry.
func (m *meta) repository() string { return m.repo[strings.Index(m.repo, "/")+1:] }

// manifest is what writers know about one manifest: the entries of it
// (carried by it, or of photos it holds) and its tags.
type manifest struct {
	key  string
	docs []docKey
	tags []string
}

func (m *manifest) add(id docKey) {
	if !slices.Contains(m.docs, id) {
		m.docs = append(m.docs, id)
	}
}

func (m *manifest) drop(id docKey) {
	if i := slices.Index(m.docs, id); i >= 0 {
		m.docs = slices.Delete(m.docs, i, i+1)
	}
}

// sorted is the manifest's entries in a fixed order.
func (m *manifest) sorted() []docKey {
	out := slices.Clone(m.docs)
	slices.SortFunc(out, func(a, b docKey) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// state is what writers know about every entry.
type state struct {
	docs      map[docKey]meta
	manifests map[string]*manifest
	strs      map[string]string // interned strings
	// repositories and models count the entries of each repository
	// (without its registry) and model.
	repositories, models map[string]int
	// hist is the superseded entries and the links between manifests.
	hist history
	// refused are the refusals, by manifest key.
	refused map[string]Refusal
	// waiting are the manifests announced and not described (queued, or
	// failed), by manifest key.
	waiting map[string]Waiting
	// photos are the entries of each photo (repository and layer), and
	// changed the gallery's tiles changed since its list was made
	// ([Index.list]).
	photos  map[photoKey][]docKey
	changed map[tileID]struct{}
	// tagged are the manifests that carry each tag, by repository and tag
	// ([tagKey]); kept by setTags.
	tagged map[string]map[*manifest]struct{}
}

func newState() *state {
	return &state{docs: map[docKey]meta{}, manifests: map[string]*manifest{}, strs: map[string]string{},
		repositories: map[string]int{}, models: map[string]int{}, hist: newHistory(), refused: map[string]Refusal{},
		waiting: map[string]Waiting{}, photos: map[photoKey][]docKey{}, changed: map[tileID]struct{}{},
		tagged: map[string]map[*manifest]struct{}{}}
}

// tagKey is the key of a tag of the repository whose manifest keys start
// with repo (manifestKey with no digest).
func tagKey(repo, tag string) string { return repo + "\x00" + tag }

// repoOf is the repository part of a manifest key (manifestKey with no
// digest).
func repoOf(key string) string { return key[:strings.LastIndex(key, "@")+1] }

// setTags sets mf's tags, keeping tagged in step.
func (s *state) setTags(mf *manifest, tags []string) {
	repo := repoOf(mf.key)
	for _, t := range mf.tags {
		if set := s.tagged[tagKey(repo, t)]; set != nil {
			delete(set, mf)
			if len(set) == 0 {
				delete(s.tagged, tagKey(repo, t))
			}
		}
	}
	mf.tags = tags
	for _, t := range tags {
		k := tagKey(repo, t)
		if s.tagged[k] == nil {
			s.tagged[k] = map[*manifest]struct{}{}
		}
		s.tagged[k][mf] = struct{}{}
	}
}

// carrying are the manifests of repo (manifestKey with no digest) that
// carry tag.
func (s *state) carrying(repo, tag string) []*manifest {
	set := s.tagged[tagKey(repo, tag)]
	out := make([]*manifest, 0, len(set))
	for mf := range set {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *manifest) int { return strings.Compare(a.key, b.key) })
	return out
}

// names are the repositories (without registry) and the models of the
// entries, sorted.
func (s *state) names() (repositories, models []string) {
	return slices.Sorted(maps.Keys(s.repositories)), slices.Sorted(maps.Keys(s.models))
}

func count(m map[string]int, k string, by int) {
	if m[k] += by; m[k] <= 0 {
		delete(m, k)
	}
}

// intern is s, shared with every equal string interned before.
func (s *state) intern(v string) string {
	if i, ok := s.strs[v]; ok {
		return i
	}
	v = strings.Clone(v)
	s.strs[v] = v
	return v
}

// manifestKey names a manifest of a repository.
func manifestKey(registry, repository, digest string) string {
	return registry + "/" + repository + "@" + digest
}

// docID is the id of the entry of one photo by one describer.
func docID(registry, repository, digest, manifest, layer, by string) docKey {
	sum := sha256.Sum256([]byte(strings.Join([]string{registry, repository, digest, manifest, layer, by}, "\x00")))
	return docKey(sum[:16])
}

func (s *state) manifest(key string) *manifest {
	m := s.manifests[key]
	if m == nil {
		m = &manifest{key: key}
		s.manifests[key] = m
	}
	return m
}

// put records the entry id of d.
func (s *state) put(id docKey, d *doc) {
	s.remove(id)
	vkey, _ := parseTextKey(d.VKey)
	m := meta{
		repo: s.intern(d.Registry + "/" + d.Repository), by: s.intern(d.By), model: s.intern(d.Model),
		digest: s.manifest(manifestKey(d.Registry, d.Repository, d.Digest)), layer: layerKey(d.Layer),
		annotation: d.Stored == "annotation", person: isPerson(d.Model), carried: d.From != "", created: d.Created.Unix(),
		hash: d.hashKey(), vkey: vkey,
	}
	m.digest.add(id)
	s.addPhoto(m, id)
	if d.Manifest != "" && d.Manifest != d.Digest {
		m.child = s.manifest(manifestKey(d.Registry, d.Repository, d.Manifest))
		m.child.add(id)
	}
	s.docs[id] = m
	count(s.repositories, m.repository(), 1)
	count(s.models, m.model, 1)
}

func layerKey(layer string) [16]byte {
	sum := sha256.Sum256([]byte(layer))
	return [16]byte(sum[:16])
}

// remove forgets entry id and returns what was known of it (ok false if
// nothing). Manifests left without entries stay: see [state.tidy].
func (s *state) remove(id docKey) (meta, bool) {
	m, ok := s.docs[id]
	if !ok {
		return meta{}, false
	}
	delete(s.docs, id)
	s.dropPhoto(m, id)
	count(s.repositories, m.repository(), -1)
	count(s.models, m.model, -1)
	m.digest.drop(id)
	if m.child != nil {
		m.child.drop(id)
	}
	return m, true
}

// tidy forgets the manifests that have neither entries nor tags.
func (s *state) tidy(mfs ...*manifest) {
	for _, mf := range mfs {
		if mf != nil && len(mf.docs) == 0 && len(mf.tags) == 0 && s.manifests[mf.key] == mf {
			delete(s.manifests, mf.key)
		}
	}
}

func isPerson(model string) bool { return model == "person" || strings.HasPrefix(model, "person:") }

// loadState reads what writers need from every entry of bi and from the
// history in db.
func loadState(bi bleve.Index, db *bolt.DB) (*state, error) {
	s := newState()
	const page = 5000
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), page, 0, false)
		req.Fields = []string{fSource}
		req.SortBy([]string{"_id"})
		if after != nil {
			req.SetSearchAfter(after)
		}
		res, err := bi.Search(req)
		if err != nil {
			return nil, fmt.Errorf("index: read entries: %w", err)
		}
		for _, h := range res.Hits {
			d := docFromFields(h.Fields)
			id, ok := parseDocKey(h.ID)
			if d == nil || !ok {
				return nil, fmt.Errorf("index: entry %q is unreadable; delete the index directory to rebuild it from the stream", h.ID)
			}
			s.put(id, d)
			mf := s.manifests[manifestKey(d.Registry, d.Repository, d.Digest)]
			s.setTags(mf, s.mergeTags(mf.tags, d.Tags))
		}
		if len(res.Hits) < page {
			return s, loadHistory(db, s)
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// otherNames are the registry names of the entries and the history that
// canonical (Options.Registry) names otherwise, sorted; none when
// canonical is nil.
func (s *state) otherNames(canonical func(string) string) []string {
	if canonical == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	check := func(key string) {
		reg, _, _ := strings.Cut(key, "/")
		if !seen[reg] {
			seen[reg] = true
			if canonical(reg) != reg {
				out = append(out, reg)
			}
		}
	}
	for key := range s.manifests {
		check(key)
	}
	for key := range s.hist.of {
		check(key)
	}
	for key := range s.hist.next {
		check(key)
	}
	slices.Sort(out)
	return out
}

// mergeTags is the sorted union of a and b, interned.
func (s *state) mergeTags(a, b []string) []string {
	out := slices.Clone(a)
	for _, t := range b {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, s.intern(t))
		}
	}
	slices.Sort(out)
	return slices.Clip(out)
}

// hitDocs reads the stored docs of hits.
func hitDocs(hits search.DocumentMatchCollection) map[string]*doc {
	out := make(map[string]*doc, len(hits))
	for _, h := range hits {
		if d := docFromFields(h.Fields); d != nil {
			out[h.ID] = d
		}
	}
	return out
}
