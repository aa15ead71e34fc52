package index

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
)

// doc is what the index stores for one entry.
type doc struct {
	Registry    string    `json:"registry"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Manifest    string    `json:"manifest"`
	Layer       string    `json:"layer"`
	MediaType   string    `json:"mediaType"`
	Tags        []string  `json:"tags"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Alt         string    `json:"alt"`
	Keywords    []string  `json:"keywords"`
	Text        string    `json:"text"`
	Model       string    `json:"model"`
	By          string    `json:"by"`
	Created     time.Time `json:"created"`
	Indexed     time.Time `json:"indexed"`
	Stored      string    `json:"stored"`
	// Hash identifies the content (all but Indexed): an event applied
	// again finds it unchanged and writes nothing.
	Hash string `json:"hash"`
	// VKey identifies the text that is embedded ([doc.embedText]).
	VKey string `json:"vkey"`
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

// embedText is what is embedded for semantic search: what the photo shows,
// in every form the describer gave.
func (d *doc) embedText() string {
	parts := []string{d.Description, d.Alt, strings.Join(d.Keywords, ", "), d.Text}
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return strings.TrimSpace(s) == "" }), "\n")
}

// entry is the doc as the API shows it.
func (d *doc) entry() Entry {
	return Entry{
		Registry: d.Registry, Repository: d.Repository, Digest: d.Digest, Manifest: d.Manifest, Layer: d.Layer,
		MediaType: d.MediaType, Tags: nonNil(d.Tags), Title: d.Title, Description: d.Description, Alt: d.Alt,
		Keywords: nonNil(d.Keywords), Text: d.Text, Model: d.Model, Created: d.Created, Stored: d.Stored,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// docFromFields reads a doc back from a hit's stored fields.
func docFromFields(f map[string]any) *doc {
	str := func(k string) string { s, _ := f[k].(string); return s }
	list := func(k string) []string {
		switch v := f[k].(type) {
		case string:
			return []string{v}
		case []any:
			out := make([]string, 0, len(v))
			for _, x := range v {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
		return nil
	}
	when := func(k string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, str(k))
		return t
	}
	return &doc{
		Registry: str(fRegistry), Repository: str(fRepository), Digest: str(fDigest), Manifest: str(fManifest),
		Layer: str(fLayer), MediaType: str(fMediaType), Tags: list(fTags), Title: str(fTitle),
		Description: str(fDescription), Alt: str(fAlt), Keywords: list(fKeywords), Text: str(fText),
		Model: str(fModel), By: str(fBy), Created: when(fCreated), Indexed: when(fIndexed), Stored: str(fStored),
		Hash: str(fHash), VKey: str(fVKey),
	}
}

// meta is what writers know about one entry without reading it back.
type meta struct {
	repo       string // registry/repository (shared with the other entries)
	digest     string // manifestKey of the doc's Digest
	child      string // manifestKey of its Manifest when that differs
	layer      string
	by         string
	annotation bool // stored as annotations (superseded by a re-pushed manifest)
	person     bool // a person's description
	created    int64
	hash       string
	vkey       string
}

// manifest is what writers know about one manifest: the entries of it
// (carried by it, or of photos it holds) and its tags.
type manifest struct {
	docs map[string]struct{}
	tags []string
}

// state is what writers know about every entry.
type state struct {
	docs      map[string]*meta
	manifests map[string]*manifest
	repos     map[string]string // interned registry/repository
}

func newState() *state {
	return &state{docs: map[string]*meta{}, manifests: map[string]*manifest{}, repos: map[string]string{}}
}

// manifestKey names a manifest of a repository.
func manifestKey(registry, repository, digest string) string {
	return registry + "/" + repository + "@" + digest
}

// docID is the id of the entry of one photo by one describer.
func docID(registry, repository, digest, manifest, layer, by string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{registry, repository, digest, manifest, layer, by}, "\x00")))
	return hex.EncodeToString(sum[:16])
}

func (s *state) manifest(key string) *manifest {
	m := s.manifests[key]
	if m == nil {
		m = &manifest{docs: map[string]struct{}{}}
		s.manifests[key] = m
	}
	return m
}

// put records the entry id of d.
func (s *state) put(id string, d *doc) {
	s.remove(id)
	repo := d.Registry + "/" + d.Repository
	if r, ok := s.repos[repo]; ok {
		repo = r
	} else {
		s.repos[repo] = repo
	}
	m := &meta{
		repo: repo, digest: manifestKey(d.Registry, d.Repository, d.Digest), layer: d.Layer, by: d.By,
		annotation: d.Stored == "annotation", person: isPerson(d.Model), created: d.Created.Unix(),
		hash: d.Hash, vkey: d.VKey,
	}
	s.manifest(m.digest).docs[id] = struct{}{}
	if d.Manifest != "" && d.Manifest != d.Digest {
		m.child = manifestKey(d.Registry, d.Repository, d.Manifest)
		s.manifest(m.child).docs[id] = struct{}{}
	}
	s.docs[id] = m
}

// remove forgets entry id and returns what was known of it (nil if
// nothing). Manifests left without entries stay: see [state.tidy].
func (s *state) remove(id string) *meta {
	m := s.docs[id]
	if m == nil {
		return nil
	}
	delete(s.docs, id)
	for _, key := range []string{m.digest, m.child} {
		if mf := s.manifests[key]; mf != nil {
			delete(mf.docs, id)
		}
	}
	return m
}

// tidy forgets the manifests of keys that have neither entries nor tags.
func (s *state) tidy(keys ...string) {
	for _, key := range keys {
		if mf := s.manifests[key]; mf != nil && len(mf.docs) == 0 && len(mf.tags) == 0 {
			delete(s.manifests, key)
		}
	}
}

func isPerson(model string) bool { return model == "person" || strings.HasPrefix(model, "person:") }

// loadState reads what writers need from every entry of bi.
func loadState(bi bleve.Index) (*state, error) {
	s := newState()
	const page = 5000
	var after []string
	for {
		req := bleve.NewSearchRequestOptions(bleve.NewMatchAllQuery(), page, 0, false)
		req.Fields = []string{fRegistry, fRepository, fDigest, fManifest, fLayer, fBy, fModel, fStored, fCreated, fHash, fVKey, fTags}
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
			s.put(h.ID, d)
			if mf := s.manifests[manifestKey(d.Registry, d.Repository, d.Digest)]; mf != nil {
				mf.tags = mergeTags(mf.tags, d.Tags)
			}
		}
		if len(res.Hits) < page {
			return s, nil
		}
		after = []string{res.Hits[len(res.Hits)-1].ID}
	}
}

// mergeTags is the sorted union of a and b.
func mergeTags(a, b []string) []string {
	out := slices.Clone(a)
	for _, t := range b {
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// hitFields reads the stored fields of hits into docs.
func hitDocs(hits search.DocumentMatchCollection) map[string]*doc {
	out := make(map[string]*doc, len(hits))
	for _, h := range hits {
		out[h.ID] = docFromFields(h.Fields)
	}
	return out
}
