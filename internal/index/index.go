package index

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	bindex "github.com/blevesearch/bleve_index_api"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"github.com/regscribe/regscribe/internal/feed"
)

// Entry is one photo's description by one describer (one per photo per
// describer).
type Entry struct {
	Registry   string `json:"registry"`
	Repository string `json:"repository"`
	// Digest is the manifest carrying the description (feed.Event.Digest).
	Digest string `json:"digest"`
	// Manifest is the image manifest holding the layer (an album's child),
	// else equal to Digest.
	Manifest    string   `json:"manifest,omitempty"`
	Layer       string   `json:"layer"`
	MediaType   string   `json:"mediaType,omitempty"`
	Tags        []string `json:"tags"`
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description"`
	Alt         string   `json:"alt"`
	Keywords    []string `json:"keywords"`
	// Text is the text visible in the photo.
	Text string `json:"text"`
	// Model is io.regscribe.model ("person[:NAME]" for a correction).
	Model   string    `json:"model"`
	Created time.Time `json:"created"`
	// Stored is "annotation" or "referrer sha256:…".
	Stored string `json:"stored"`
	// Superseded is when a newer description replaced this one in the
	// registry (annotation mode: a re-pushed manifest, SupersededBy its
	// digest); zero for a current description. Only [Index.Photo] lists
	// superseded descriptions, as the photo's history.
	Superseded   time.Time `json:"superseded,omitzero"`
	SupersededBy string    `json:"supersededBy,omitempty"`
}

// Ref is registry/repository@digest.
func (e Entry) Ref() string { return e.Registry + "/" + e.Repository + "@" + e.Digest }

// Hit is one result, best first.
type Hit struct {
	Entry
	// Score is the fused rank score of text and vector search, or the BM25
	// score alone when no vectors took part.
	Score float64 `json:"score"`
}

// Repository is one repository with indexed photos.
type Repository struct {
	Registry, Repository string
	// Photos is how many distinct photos (layers) have a description.
	Photos int
	// Refused is how many manifests hold no photo regscribe describes
	// (read and refused: [Index.Refusals]).
	Refused int
	// Queued and Failed count the manifests announced and not described:
	// queued (or in flight), and given up ([Index.Tiles]).
	Queued, Failed int
	// Latest is the newest description's (or announcement's) time.
	Latest time.Time
}

// Embedder turns texts into vectors, one per text, in order. Package embed
// implements it for Ollama and OpenAI-compatible servers.
type Embedder interface {
	// Model names the embedding model, e.g. "ollama/nomic-embed-text".
	Model() string
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Options configure [Open].
type Options struct {
	// Dir holds the index. Required; created if missing.
	Dir string
	// Language of the descriptions as a BCP 47 tag (REGSCRIBE_LANGUAGE):
	// its primary subtag picks bleve's analyzer ("de-AT": German). Empty:
	// English; a language bleve has no analyzer for: the standard one
	// (words, lower case, no stemming). A directory keeps the analyzer it
	// was created with.
	Language string
	// Embedder, if set, makes search semantic too; nil: text search only.
	Embedder Embedder
	// Vectors is the KV bucket that remembers vectors ([VectorBucket]). If
	// nil, vectors are kept in memory only and every entry is embedded
	// again after a restart.
	Vectors jetstream.KeyValue
	// QueryTimeout bounds embedding a query at search time. If zero, 2 s;
	// when it passes, the search is text only.
	QueryTimeout time.Duration
	// MinSimilarity is the cosine similarity below which a vector match is
	// no match. If zero, 0.5; negative: every vector is a candidate.
	MinSimilarity float64
	// Log receives warnings (a malformed event, an embedder that is down).
	// If nil, slog.Default().
	Log *slog.Logger
	// Registry, if set, is the canonical name of a registry by any of its
	// names (registry.Names.Canonical): every event is indexed under it, so
	// one registry is one registry in search and the gallery whichever
	// name an event carries. An index that holds entries under another name
	// of a registry (written before) is rebuilt from the stream when opened.
	Registry func(host string) string
}

// Index is the search index. Its methods are safe for concurrent use.
type Index struct {
	opts Options
	bi   bleve.Index
	hdb  *bolt.DB // the history ([historyFile])
	id   string
	log  *slog.Logger

	// mu serialises writers; state is what they need to know about the
	// entries without reading them back.
	mu    sync.Mutex
	state *state
	// changes counts the batches written (under mu): the gallery's list
	// ([Index.Tiles]) is made again when it grows.
	changes uint64
	tiles   tileCache
	repos   repoCache

	vec *vectors // nil without an Embedder

	// applied is the highest stream sequence whose event is applied and
	// committed (or set aside as malformed); progress is closed and
	// replaced whenever it grows.
	progressMu sync.Mutex
	applied    uint64
	progress   chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup

	// replay is set when the index was emptied to be rebuilt: its durable
	// consumer is made again, to read the stream from the start.
	replay bool
	// resumeAt, when set, is the stream sequence the durable consumer is
	// made again from: a delivery was lost on the way (a NATS restart), and
	// acknowledging what came after it would skip it for good.
	resumeAt uint64
	// nextDelivery is the consumer sequence the next delivery must have
	// (0: not known yet).
	nextDelivery uint64
}

// idFile holds the index's id, which names its durable consumer.
const idFile = "index-id"

// Open opens the index in opts.Dir, creating it if needed, and reads what
// the writers need to know about its entries.
func Open(opts Options) (*Index, error) {
	if opts.Dir == "" {
		return nil, errors.New("index: no directory")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = 2 * time.Second
	}
	if opts.MinSimilarity == 0 {
		opts.MinSimilarity = 0.5
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	id, err := indexID(opts.Dir)
	if err != nil {
		return nil, err
	}
	ix := &Index{opts: opts, id: id, log: opts.Log, progress: make(chan struct{}), stop: make(chan struct{})}
	if err := ix.openStore(); err != nil {
		return nil, err
	}
	if stray := ix.state.otherNames(opts.Registry); len(stray) > 0 {
		ix.log.Warn("index: entries under other names of a registry; rebuilding the index from the description stream", "names", stray)
		if err := ix.empty(); err != nil {
			return nil, err
		}
	}
	if opts.Embedder != nil {
		ix.vec = newVectors(ix, opts.Embedder, opts.Vectors)
		for id, m := range ix.state.docs {
			ix.vec.want(id, m.vkey)
		}
		ix.wg.Add(1)
		go func() { defer ix.wg.Done(); ix.vec.loop(ix.stop) }()
	}
	return ix, nil
}

// openStore opens (or creates) bleve and the history in the index
// directory and reads the writers' state from them.
func (ix *Index) openStore() error {
	path := filepath.Join(ix.opts.Dir, "bleve")
	bi, err := bleve.Open(path)
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		bi, err = bleve.New(path, newMapping(Analyzer(ix.opts.Language)))
	}
	if err != nil {
		return fmt.Errorf("index: open %s: %w", path, err)
	}
	hdb, err := openHistory(ix.opts.Dir)
	if err != nil {
		_ = bi.Close()
		return err
	}
	st, err := loadState(bi, hdb)
	if err != nil {
		_ = bi.Close()
		_ = hdb.Close()
		return err
	}
	ix.bi, ix.hdb, ix.state = bi, hdb, st
	return nil
}

// empty deletes every entry and the history, to be rebuilt from the
// stream from its start ([Index.Follow] makes the consumer again).
func (ix *Index) empty() error {
	if err := errors.Join(ix.bi.Close(), ix.hdb.Close()); err != nil {
		return fmt.Errorf("index: close to rebuild: %w", err)
	}
	for _, p := range []string{filepath.Join(ix.opts.Dir, "bleve"), filepath.Join(ix.opts.Dir, historyFile)} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("index: rebuild: %w", err)
		}
	}
	ix.replay = true
	return ix.openStore()
}

// canonical is the event with its registry's canonical name (Options.Registry).
func (ix *Index) canonical(e feed.Event) feed.Event {
	if ix.opts.Registry != nil && e.Registry != "" {
		e.Registry = ix.opts.Registry(e.Registry)
	}
	return e
}

// indexID reads the index's id from dir, or makes one for a new index.
func indexID(dir string) (string, error) {
	p := filepath.Join(dir, idFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("index: %w", err)
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := os.WriteFile(p, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("index: %w", err)
	}
	return id, nil
}

// ID is the index's id: its durable consumer is "regscribe-index-<ID>".
func (ix *Index) ID() string { return ix.id }

// Consumer is the name of the index's durable consumer of the stream.
func (ix *Index) Consumer() string { return "regscribe-index-" + ix.id }

// Close stops embedding, closes the index and lets go of what it holds in
// memory.
func (ix *Index) Close() error {
	select {
	case <-ix.stop:
		return nil
	default:
	}
	close(ix.stop)
	ix.wg.Wait()
	err := errors.Join(ix.bi.Close(), ix.hdb.Close())
	// What the writers and the vectors hold is let go.
	ix.mu.Lock()
	ix.state = newState()
	ix.mu.Unlock()
	if ix.vec != nil {
		ix.vec.release()
	}
	return err
}

// Count is how many current entries the index holds (superseded ones,
// the photos' history, are not counted).
func (ix *Index) Count() (uint64, error) { return ix.bi.DocCount() }

// Embedded is how many entries have a vector, and how many wait for one
// (both zero without an Embedder).
func (ix *Index) Embedded() (done, waiting int) {
	if ix.vec == nil {
		return 0, 0
	}
	return ix.vec.counts()
}

// analyzers maps BCP 47 primary subtags to bleve's language analyzers.
var analyzers = map[string]string{
	"ar": "ar", "ckb": "ckb", "da": "da", "de": "de", "en": "en", "es": "es", "fa": "fa", "fi": "fi",
	"fr": "fr", "hi": "hi", "hr": "hr", "hu": "hu", "it": "it", "nl": "nl", "no": "no", "nb": "no",
	"nn": "no", "pl": "pl", "pt": "pt", "ro": "ro", "ru": "ru", "sv": "sv", "tr": "tr",
	"zh": "cjk", "ja": "cjk", "ko": "cjk",
}

// Analyzer is the bleve analyzer for a BCP 47 language tag: "en" when
// empty, "standard" for a language bleve has none for.
func Analyzer(language string) string {
	tag := strings.ToLower(strings.TrimSpace(strings.ReplaceAll(language, "_", "-")))
	if tag == "" {
		return "en"
	}
	primary, _, _ := strings.Cut(tag, "-")
	if a, ok := analyzers[primary]; ok {
		return a
	}
	return "standard"
}

// Field names of the documents ([indexed]).
const (
	fRepository  = "repository"
	fTags        = "tags"
	fTitle       = "title"
	fDescription = "description"
	fAlt         = "alt"
	fKeywords    = "keywords"
	fText        = "text"
	fModel       = "model"
	fCreated     = "created"
	fSource      = "src"
)

// textFields are analysed with the language's analyzer, with the boost
// each gets in text scoring: what the photo shows (description, visible
// text) above the short forms (keywords, alt text) and the file name.
var textFields = []struct {
	name  string
	boost float64
}{{fDescription, 3}, {fText, 2.5}, {fKeywords, 1.5}, {fAlt, 1}, {fTitle, 1}}

// newMapping is the index's field mapping: analysed text (with term
// vectors, for phrases), keyword fields for filters, the description time
// (with doc values, for sorting), none of them stored; and the whole doc
// stored, not indexed, in one field.
func newMapping(analyzer string) *mapping.IndexMappingImpl {
	im := bleve.NewIndexMapping()
	im.DefaultAnalyzer = analyzer
	im.ScoringModel = bindex.BM25Scoring
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	dm := bleve.NewDocumentStaticMapping()
	for _, f := range textFields {
		fm := bleve.NewTextFieldMapping()
		fm.Analyzer, fm.Store, fm.IncludeInAll, fm.DocValues = analyzer, false, false, false
		dm.AddFieldMappingsAt(f.name, fm)
	}
	for _, name := range []string{fRepository, fTags, fModel} {
		fm := bleve.NewKeywordFieldMapping()
		fm.Store, fm.IncludeInAll, fm.IncludeTermVectors, fm.DocValues = false, false, false, false
		dm.AddFieldMappingsAt(name, fm)
	}
	created := bleve.NewDateTimeFieldMapping()
	created.Store, created.IncludeInAll = false, false
	dm.AddFieldMappingsAt(fCreated, created)
	src := bleve.NewKeywordFieldMapping()
	src.Index, src.IncludeInAll, src.IncludeTermVectors, src.DocValues = false, false, false, false
	dm.AddFieldMappingsAt(fSource, src)
	im.DefaultMapping = dm
	return im
}

// markApplied records that the events up to stream sequence seq are applied.
func (ix *Index) markApplied(seq uint64) {
	ix.progressMu.Lock()
	defer ix.progressMu.Unlock()
	if seq <= ix.applied {
		return
	}
	ix.applied = seq
	close(ix.progress)
	ix.progress = make(chan struct{})
}

// appliedSeq is the applied sequence and a channel closed when it grows.
func (ix *Index) appliedSeq() (uint64, <-chan struct{}) {
	ix.progressMu.Lock()
	defer ix.progressMu.Unlock()
	return ix.applied, ix.progress
}

// Wait blocks until the index has applied every event stored in the
// stream before the call, or ctx ends. It needs [Index.Follow] running.
func (ix *Index) Wait(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, feed.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("index: wait: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("index: wait: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	for {
		seq, grew := ix.appliedSeq()
		if seq >= last {
			return nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
