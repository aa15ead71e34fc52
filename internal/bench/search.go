package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/regscribe/regscribe/internal/embed"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/modeltest"
)

// SearchEmbedDims is the size of the fake embedder's vectors in the
// search section: all-minilm's, the smallest of the embedding models
// people run on Ollama (nomic-embed-text has 768).
const SearchEmbedDims = 384

// Search is the search index: N synthetic descriptions published on the
// description stream, indexed from it, then queried.
type Search struct {
	Photos int `json:"photos"`
	// PublishSeconds is publishing the events (not part of indexing).
	PublishSeconds float64 `json:"publishSeconds"`
	// IndexSeconds is from opening a new index to its having applied every
	// event of the stream (text only); IndexPerSecond the photos per second.
	IndexSeconds   float64 `json:"indexSeconds"`
	IndexPerSecond float64 `json:"indexPerSecond"`
	IndexLoad      Load    `json:"indexLoad"`
	// Queries is how many queries each percentile is over.
	Queries   int     `json:"queries"`
	TextP50Ms float64 `json:"textP50Ms"`
	TextP95Ms float64 `json:"textP95Ms"`
	// ScanP50Ms and ScanP95Ms are the same queries as a naive scan:
	// strings.Contains of every word over every description in memory.
	ScanP50Ms float64 `json:"scanP50Ms"`
	ScanP95Ms float64 `json:"scanP95Ms"`
	// EmbedSeconds is from reopening the index with the fake embedder to
	// every entry having its vector (each text embedded over HTTP and
	// remembered in the bucket); EmbedPerSecond the entries per second.
	EmbedSeconds   float64 `json:"embedSeconds"`
	EmbedPerSecond float64 `json:"embedPerSecond"`
	EmbedDims      int     `json:"embedDims"`
	// HybridP50Ms and HybridP95Ms are text and vector search fused, with
	// the query embedded by the fake embedder over HTTP.
	HybridP50Ms float64 `json:"hybridP50Ms"`
	HybridP95Ms float64 `json:"hybridP95Ms"`
	// HeapMB and RSSMB are what the open index with every vector holds:
	// the Go heap in use after a GC, and the resident set after the heap
	// is returned to the OS, with the index open less with it closed (the
	// same process, NATS and the fake embedder running throughout, so
	// neither counts). RSS includes the index files bleve maps. MB = 10^6
	// bytes.
	HeapMB float64 `json:"heapMB"`
	RSSMB  float64 `json:"rssMB"`
	// DiskBytesPerPhoto is the index directory's size per photo.
	DiskBytesPerPhoto float64 `json:"diskBytesPerPhoto"`
}

// Vocabulary of the synthetic descriptions.
var (
	benchSubjects = []string{"forklift", "red bus", "blue tram", "golden retriever", "tabby cat", "lighthouse", "container ship",
		"bicycle", "vintage car", "espresso cup", "whiteboard", "server rack", "wind turbine", "sailboat", "mountain hut",
		"street market", "concert stage", "wedding cake", "football pitch", "greenhouse", "delivery van", "oak tree",
		"crane", "harbour", "bridge", "skyline", "laptop", "bookshelf", "kitchen", "garden", "beach", "waterfall"}
	benchActions = []string{"stands in", "is parked near", "sits beside", "crosses", "is stacked in", "waits outside",
		"is lit in", "fills the frame of", "is reflected in", "leans against"}
	benchPlaces = []string{"a warehouse", "a rainy street", "an office", "a quiet harbour", "a snowy valley", "a city square",
		"a train station", "a living room", "a factory floor", "a park", "a museum hall", "a parking lot"}
	benchLight = []string{"bright fluorescent light", "soft morning light", "golden evening light", "overcast daylight",
		"neon light", "candlelight", "harsh midday sun", "blue dusk"}
	benchColours = []string{"red", "blue", "green", "yellow", "white", "black", "grey", "orange", "purple", "brown"}
	benchSigns   = []string{"Q3 revenue up 12%", "EXIT", "No parking", "Dock 4", "Welcome", "Platform 9", "Sale 50%", "Fragile"}
	benchModels  = []string{"ollama/qwen2.5vl:3b", "ollama/gemma3:4b", "openai/gpt-4o-mini"}
	benchQueries = []string{"forklift", "red bus", `"golden retriever"`, "harbour dusk", "lighthouse repo:photos/team-1*",
		"warehouse forklift", "revenue", "cat model:gpt-4o-mini", "wind turbine valley", "espresso", "neon", "bridge tag:v2",
		"bicycle park", "kitchen candlelight", `"server rack"`, "waterfall after:2026-03-01", "sailboat", "skyline", "crane", "garden"}
)

// searchEvent is the deterministic description event of photo i.
func searchEvent(i int, rng *rand.Rand) feed.Event {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	subject, colour := pick(benchSubjects), pick(benchColours)
	desc := fmt.Sprintf("A %s %s %s %s under %s. In the background, a %s %s.",
		colour, subject, pick(benchActions), pick(benchPlaces), pick(benchLight), pick(benchColours), pick(benchSubjects))
	p := feed.Photo{
		Layer: fmt.Sprintf("sha256:%064x", i+1), MediaType: "image/jpeg", Title: fmt.Sprintf("IMG_%05d.jpg", i),
		Description: desc, Alt: fmt.Sprintf("%s %s", colour, subject), Keywords: []string{subject, colour, pick(benchSubjects)},
		Model: benchModels[i%len(benchModels)], Stored: "annotation",
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
	}
	if rng.IntN(5) == 0 {
		p.Text = pick(benchSigns)
	}
	return feed.Event{
		Version: feed.Version, Kind: feed.Written, Registry: "127.0.0.1:5000",
		Repository: fmt.Sprintf("photos/team-%d", i%50), Digest: fmt.Sprintf("sha256:%064x", 1<<40+i),
		Tags: []string{fmt.Sprintf("v%d", i%4)}, By: p.Model, Photos: []feed.Photo{p}, At: p.Created,
	}
}

// search measures the search index at opts.SearchPhotos photos.
func (r *run) search(ctx context.Context) (*Search, error) {
	n := r.opts.SearchPhotos
	res := &Search{Photos: n, EmbedDims: SearchEmbedDims}
	dir, err := os.MkdirTemp("", "regscribe-bench-search-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	js, stopNATS, err := inProcessNATS(dir, "bench-search", jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	defer stopNATS()
	if _, err := feed.EnsureStream(ctx, js, 1); err != nil {
		return nil, err
	}

	r.progress("search: publishing %d descriptions on the stream", n)
	rng := rand.New(rand.NewPCG(13, 13))
	texts := make([]string, n)
	start := time.Now()
	for i := range n {
		e := searchEvent(i, rng)
		p := e.Photos[0]
		texts[i] = strings.ToLower(strings.Join([]string{p.Description, p.Alt, strings.Join(p.Keywords, " "), p.Text, p.Title}, "\n"))
		data, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: feed.Subject(e), Data: data}); err != nil {
			return nil, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res.PublishSeconds = time.Since(start).Seconds()

	ixDir := filepath.Join(dir, "index")

	r.progress("search: indexing them from the stream")
	load := r.measureLoad()
	start = time.Now()
	ix, stop, err := followIndex(ctx, js, index.Options{Dir: ixDir, Log: discardLogger()})
	if err != nil {
		return nil, err
	}
	if err := ix.Wait(ctx, js); err != nil {
		stop()
		return nil, err
	}
	res.IndexSeconds = time.Since(start).Seconds()
	res.IndexPerSecond = float64(n) / res.IndexSeconds
	res.IndexLoad = load()
	if c, _ := ix.Count(); int(c) != n {
		stop()
		return nil, fmt.Errorf("the index holds %d entries of %d", c, n)
	}

	r.progress("search: text queries, and the same as a naive scan")
	const rounds = 10
	res.Queries = rounds * len(benchQueries)
	var took, scan []time.Duration
	for range rounds {
		for _, q := range benchQueries {
			pq, err := index.ParseQuery(q)
			if err != nil {
				stop()
				return nil, err
			}
			t0 := time.Now()
			if _, _, err := ix.Search(ctx, pq); err != nil {
				stop()
				return nil, err
			}
			took = append(took, time.Since(t0))
			t0 = time.Now()
			naiveScan(texts, pq.Text)
			scan = append(scan, time.Since(t0))
		}
	}
	res.TextP50Ms, res.TextP95Ms = pct(took, 50), pct(took, 95)
	res.ScanP50Ms, res.ScanP95Ms = pct(scan, 50), pct(scan, 95)
	stop()
	res.DiskBytesPerPhoto = float64(dirSize(ixDir)) / float64(n)

	r.progress("search: reopening the index with a fake embedder (%d dimensions) and embedding every description", SearchEmbedDims)
	fake := modeltest.NewUnstartedOllama("bench-embed:latest")
	fake.EmbedDims = SearchEmbedDims
	fake.Start()
	defer fake.Close()
	u, err := url.Parse(fake.URL)
	if err != nil {
		return nil, err
	}
	kv, err := index.VectorBucket(ctx, js, 1)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	ix, stop, err = followIndex(ctx, js, index.Options{Dir: ixDir, Log: discardLogger(),
		Embedder: embed.NewOllama(embed.OllamaOptions{BaseURL: u, Model: "bench-embed"}), Vectors: kv})
	if err != nil {
		return nil, err
	}
	defer stop()
	for {
		if done, waiting := ix.Embedded(); waiting == 0 && done == n {
			break
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	res.EmbedSeconds = time.Since(start).Seconds()
	res.EmbedPerSecond = float64(n) / res.EmbedSeconds

	r.progress("search: hybrid queries")
	took = took[:0]
	for range rounds {
		for _, q := range benchQueries {
			pq, err := index.ParseQuery(q)
			if err != nil {
				return nil, err
			}
			t0 := time.Now()
			if _, _, err := ix.Search(ctx, pq); err != nil {
				return nil, err
			}
			took = append(took, time.Since(t0))
		}
	}
	res.HybridP50Ms, res.HybridP95Ms = pct(took, 50), pct(took, 95)

	heapOpen, rssOpen := settledMemory()
	stop()
	heapClosed, rssClosed := settledMemory()
	res.HeapMB = float64(int64(heapOpen)-int64(heapClosed)) / 1e6
	res.RSSMB = float64(rssOpen-rssClosed) / 1e6
	return res, nil
}

// followIndex opens an index and follows js with it until stop.
func followIndex(ctx context.Context, js jetstream.JetStream, opts index.Options) (*index.Index, func(), error) {
	ix, err := index.Open(opts)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ix.Follow(ctx, js) }()
	var once sync.Once
	return ix, func() { once.Do(func() { cancel(); <-done; _ = ix.Close() }) }, nil
}

// naiveScan is the search without an index: every description that
// contains every word (or quoted phrase) of text.
func naiveScan(texts []string, text string) int {
	var words []string
	for i, part := range strings.Split(strings.ToLower(text), `"`) {
		if i%2 == 1 {
			words = append(words, part)
		} else {
			words = append(words, strings.Fields(part)...)
		}
	}
	found := 0
	for _, t := range texts {
		all := true
		for _, w := range words {
			if !strings.Contains(t, w) {
				all = false
				break
			}
		}
		if all {
			found++
		}
	}
	return found
}

// pct is the p-th percentile of ds in milliseconds.
func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return ms(percentile(s, p))
}

// settledMemory is the Go heap in use after a GC, and the resident set
// after the freed heap is returned to the OS.
func settledMemory() (heap uint64, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, rssNow()
}

func rssNow() int64 {
	rss, _ := memoryStatus()
	return rss
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
