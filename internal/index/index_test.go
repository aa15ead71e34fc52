package index_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/stacktest"
)

const reg = "127.0.0.1:5000"

// syncBuffer is a log sink tests read while the index writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a stream, its publisher and indexes following it.
type env struct {
	t   *testing.T
	ctx context.Context
	js  jetstream.JetStream
	pub *feed.Publisher
	log *syncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	js := stacktest.JetStream(t)
	_, err := feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	return &env{t: t, ctx: ctx, js: js, pub: feed.NewPublisher(js), log: &syncBuffer{}}
}

// open opens an index in dir and follows the stream until the test ends
// or the returned stop is called.
func (e *env) open(dir string, opts index.Options) (*index.Index, func()) {
	e.t.Helper()
	opts.Dir = dir
	opts.Log = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return stacktest.FollowIndex(e.t, e.js, opts)
}

func (e *env) publish(ev feed.Event) {
	e.t.Helper()
	_, err := e.pub.Publish(e.ctx, ev, "")
	require.NoError(e.t, err)
}

func (e *env) wait(ix *index.Index) {
	e.t.Helper()
	require.NoError(e.t, ix.Wait(e.ctx, e.js))
}

func (e *env) search(ix *index.Index, q string) []index.Hit {
	e.t.Helper()
	pq, err := index.ParseQuery(q)
	require.NoError(e.t, err)
	hits, total, err := ix.Search(e.ctx, pq)
	require.NoError(e.t, err)
	require.GreaterOrEqual(e.t, total, len(hits))
	return hits
}

// layers are the layer digests of hits, best first.
func layers(hits []index.Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.Layer)
	}
	return out
}

func photo(layer, description string, keywords ...string) feed.Photo {
	return feed.Photo{Layer: layer, Description: description, Alt: "", Keywords: keywords, Stored: "annotation"}
}

func written(repo, digest, by string, tags []string, at time.Time, photos ...feed.Photo) feed.Event {
	for i := range photos {
		photos[i].Model = by
		photos[i].Created = at
	}
	return feed.Event{Kind: feed.Written, Registry: reg, Repository: repo, Digest: digest, By: by, Tags: tags, Photos: photos, At: at}
}

func day(s string) time.Time {
	t, _ := time.Parse(time.DateOnly, s)
	return t.Add(12 * time.Hour)
}

func TestApplyAndFind(t *testing.T) {
	e := newEnv(t)
	bus := photo("sha256:l-bus", "A red double-decker bus waits at a stop in the rain.", "bus", "street")
	bus.Text = "Route 73 to Oxford Circus"
	e.publish(written("photos/london", "sha256:m-bus", "ollama/qwen2.5vl:3b", []string{"latest"}, day("2026-01-10"), bus))
	e.publish(written("photos/paris", "sha256:m-tram", "openai/gpt-4o-mini", []string{"v1"}, day("2026-03-02"),
		photo("sha256:l-tram", "A blue tram crosses a bridge; a red bus follows far behind.", "tram")))
	e.publish(written("team/slides/q3", "sha256:m-slide", "person:ann", nil, day("2026-02-01"),
		photo("sha256:l-slide", "A presentation slide with a bar chart.", "slide", "chart")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	for q, want := range map[string][]string{
		"bus":                     {"sha256:l-bus", "sha256:l-tram"},
		`"red double-decker bus"`: {"sha256:l-bus"},
		`"bus follows"`:           {"sha256:l-tram"},
		"red tram":                {"sha256:l-tram"},
		"oxford circus":           {"sha256:l-bus"}, // visible text
		"chart":                   {"sha256:l-slide"},
		"the":                     {},
		"bus repo:photos/*":       {"sha256:l-bus", "sha256:l-tram"},
		"bus repo:photos/paris":   {"sha256:l-tram"},
		"repo:team/*":             {"sha256:l-slide"}, // team/slides and below
		"repo:team/s*":            {"sha256:l-slide"},
		"repo:lond":               {}, // whole segments only
		"bus repo:london":         {"sha256:l-bus"},
		"repo:slides":             {"sha256:l-slide"},
		"repo:photos":             {"sha256:l-bus", "sha256:l-tram"},
		"repo:team/**":            {"sha256:l-slide"},
		"bus model:gpt-4o-mini":   {"sha256:l-tram"},
		"model:person":            {"sha256:l-slide"},
		"bus tag:latest":          {"sha256:l-bus"},
		"bus after:2026-02-01":    {"sha256:l-tram"},
		"before:2026-02-01":       {"sha256:l-bus"},
		"after:2026-01-01 before:2026-03-01 repo:**": {"sha256:l-slide", "sha256:l-bus"},
	} {
		t.Run(q, func(t *testing.T) {
			got := layers(e.search(ix, q))
			if len(want) == 2 && q == "bus" {
				require.Equal(t, want, got, "the description that says it most, first")
				return
			}
			require.ElementsMatch(t, want, got)
		})
	}

	hits := e.search(ix, "route 73")
	require.Len(t, hits, 1)
	h := hits[0]
	require.Equal(t, index.Entry{
		Registry: reg, Repository: "photos/london", Digest: "sha256:m-bus", Manifest: "sha256:m-bus", Layer: "sha256:l-bus",
		Tags: []string{"latest"}, Description: bus.Description, Alt: "", Keywords: []string{"bus", "street"},
		Text: bus.Text, Model: "ollama/qwen2.5vl:3b", Created: day("2026-01-10"), Stored: "annotation",
	}, h.Entry)
	require.Positive(t, h.Score)
	require.Equal(t, reg+"/photos/london@sha256:m-bus", h.Ref())

	repos, err := ix.Repositories(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []index.Repository{
		{Registry: reg, Repository: "photos/paris", Photos: 1, Latest: day("2026-03-02")},
		{Registry: reg, Repository: "team/slides/q3", Photos: 1, Latest: day("2026-02-01")},
		{Registry: reg, Repository: "photos/london", Photos: 1, Latest: day("2026-01-10")},
	}, repos)
}

func TestApplyIsIdempotentAndReplaces(t *testing.T) {
	e := newEnv(t)
	ix, err := index.Open(index.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	defer ix.Close()
	ctx := e.ctx
	first := written("photos/a", "sha256:m1", "ollama/a", []string{"latest"}, day("2026-01-01"),
		photo("sha256:l1", "A red bus."), photo("sha256:l2", "A green forklift."))
	first.Version = feed.Version
	for range 2 {
		require.NoError(t, ix.Apply(ctx, first))
	}
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "applying an event twice changes nothing")

	// A person's correction of one photo sits beside the model's.
	person := written("photos/a", "sha256:m1", "person:ann", []string{"v2"}, day("2026-01-02"), photo("sha256:l1", "A red bus at dusk."))
	person.Version = feed.Version
	require.NoError(t, ix.Apply(ctx, person))

	// The model describes again: the bus is now a tram, and the forklift
	// photo is no longer listed.
	again := written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-03"), photo("sha256:l1", "A blue tram."))
	again.Version = feed.Version
	require.NoError(t, ix.Apply(ctx, again))
	require.Empty(t, layers(e.search(ix, "forklift")))
	require.Equal(t, []string{"sha256:l1"}, layers(e.search(ix, "tram")))
	hits := e.search(ix, "bus")
	require.Len(t, hits, 1)
	require.Equal(t, "person:ann", hits[0].Model, "another describer's entry stays")
	require.Equal(t, []string{"latest", "v2"}, hits[0].Tags, "tags are merged per manifest")

	entries, err := ix.Photo(ctx, reg, "photos/a", "sha256:l1")
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "A blue tram.", entries[0].Description, "newest first")
	shown, total, err := ix.Photos(ctx, reg, "photos/a", 0, 10)
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.Equal(t, "person:ann", shown[0].Model, "a person's description is the one shown")
}

func TestReplacesSupersedesAnnotations(t *testing.T) {
	e := newEnv(t)
	e.publish(written("photos/a", "sha256:orig", "ollama/a", []string{"v1"}, day("2026-01-01"), photo("sha256:l1", "An orange cat on a wall.")))
	ref := photo("sha256:l1", "A cat photographed by a referrer.")
	ref.Stored = "referrer sha256:r1"
	e.publish(written("photos/a", "sha256:orig", "ollama/b", nil, day("2026-01-01"), ref))
	re := written("photos/a", "sha256:annotated", "ollama/a", nil, day("2026-01-02"), photo("sha256:l1", "An orange cat asleep on a wall."))
	re.Replaces = "sha256:orig"
	e.publish(re)
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	hits := e.search(ix, "cat")
	require.Len(t, hits, 2)
	byDigest := map[string]index.Hit{}
	for _, h := range hits {
		byDigest[h.Digest] = h
	}
	require.Contains(t, byDigest, "sha256:annotated")
	require.Equal(t, []string{"v1"}, byDigest["sha256:annotated"].Tags, "the superseded manifest's tags carry over")
	require.Equal(t, "referrer sha256:r1", byDigest["sha256:orig"].Stored, "only annotation entries are superseded")
	require.Empty(t, e.search(ix, "cat tag:v1 model:ollama/b"))
}

func TestDeleteRemoves(t *testing.T) {
	e := newEnv(t)
	ix, _ := e.open(t.TempDir(), index.Options{})
	album := written("photos/a", "sha256:album", "ollama/a", []string{"holiday"}, day("2026-01-01"),
		photo("sha256:l1", "A sandy beach."), photo("sha256:l2", "A beach umbrella."))
	album.Photos[0].Manifest, album.Photos[1].Manifest = "sha256:child1", "sha256:child2"
	e.publish(album)
	e.publish(written("photos/a", "sha256:single", "ollama/a", nil, day("2026-01-01"), photo("sha256:l3", "A beach at night.")))
	e.wait(ix)
	require.Len(t, e.search(ix, "beach"), 3)

	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "photos/a", Digest: "sha256:child1"})
	e.wait(ix)
	require.ElementsMatch(t, []string{"sha256:l2", "sha256:l3"}, layers(e.search(ix, "beach")), "a child manifest's photos go with it")

	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "photos/a", Digest: "sha256:album"})
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: "photos/a", Digest: "sha256:single"})
	e.wait(ix)
	require.Empty(t, e.search(ix, "beach"))
	entries, err := ix.Photo(e.ctx, reg, "photos/a", "sha256:single")
	require.NoError(t, err)
	require.Empty(t, entries)
	repos, err := ix.Repositories(e.ctx)
	require.NoError(t, err)
	require.Empty(t, repos)
}

func TestRestartKeepsIndexWithoutDuplicates(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:l1", "A lighthouse on a cliff.")))
	e.publish(written("photos/a", "sha256:m2", "ollama/a", nil, day("2026-01-01"), photo("sha256:l2", "A lighthouse at dawn.")))
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)
	id := ix.ID()
	stop()

	// Published while the index is down: it catches up.
	e.publish(written("photos/a", "sha256:m3", "ollama/a", nil, day("2026-01-01"), photo("sha256:l3", "A lighthouse in fog.")))
	ix, _ = e.open(dir, index.Options{})
	require.Equal(t, id, ix.ID(), "the index keeps its id, so its consumer")
	e.wait(ix)
	require.ElementsMatch(t, []string{"sha256:l1", "sha256:l2", "sha256:l3"}, layers(e.search(ix, "lighthouse")))
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	// A second index in its own directory has its own consumer and reads
	// the stream from its start.
	other, _ := e.open(t.TempDir(), index.Options{})
	require.NotEqual(t, id, other.ID())
	e.wait(other)
	require.Len(t, e.search(other, "lighthouse"), 3)
}

func TestMalformedEventIsTermedAndLogged(t *testing.T) {
	e := newEnv(t)
	_, err := e.js.Publish(e.ctx, feed.SubjectPrefix+"0123.bad", []byte(`{"v":1,"kind":"written"`))
	require.NoError(t, err)
	_, err = e.js.Publish(e.ctx, feed.SubjectPrefix+"0123.odd", []byte(`{"v":1,"kind":"moved","registry":"r","repository":"p","digest":"d"}`))
	require.NoError(t, err)
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:l1", "A windmill.")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	require.Len(t, e.search(ix, "windmill"), 1, "the events after a malformed one are applied")
	require.Contains(t, e.log.String(), "malformed description event")
	require.Contains(t, e.log.String(), `unknown kind \"moved\"`)

	cons, err := e.js.Consumer(e.ctx, feed.Stream, ix.Consumer())
	require.NoError(t, err)
	info, err := cons.Info(e.ctx)
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending, "nothing waits to be sent again")
	require.Zero(t, info.NumPending)
}

func TestParseQuery(t *testing.T) {
	for in, want := range map[string]index.Query{
		"red bus":                       {Text: "red bus"},
		`"red bus" stop`:                {Text: `"red bus" stop`},
		"repo:photos/* forklift":        {Text: "forklift", Repository: "photos/*"},
		"model:ollama/qwen2.5vl:3b cat": {Text: "cat", Model: "ollama/qwen2.5vl:3b"},
		`tag:"my tag" cat`:              {Text: "cat", Tag: "my tag"},
		"after:2026-01-01 before:2026-02-01": {
			After: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Before: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		},
		"http://x":                          {Text: "http://x"},
		"flower -orange":                    {Text: "flower", Not: []string{"orange"}},
		`flower NOT orange -"red petals"`:   {Text: "flower", Not: []string{"orange", `"red petals"`}},
		"-orange":                           {Not: []string{"orange"}},
		"gerbera OR daisy":                  {Text: "gerbera OR daisy"},
		`gerbera OR "white daisy" - a-b or`: {Text: `gerbera OR "white daisy" - a-b or`},
	} {
		got, err := index.ParseQuery(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		again, err := index.ParseQuery(got.String())
		require.NoError(t, err, got.String())
		require.Equal(t, want, again, "String gives the same query: %s", got.String())
	}
	// A filter that cannot be read is an error that shows how to write it.
	for in, want := range map[string]string{
		"after:yesterday":       "after:2026-01-01",
		"dog before:2026-13-01": "before:2026-02-01",
		`unclosed "quote here`:  `"blue sea"`,
		"repo:":                 "repo:photos/garden",
		"OR daisy":              "gerbera OR daisy",
		"gerbera OR":            "gerbera OR daisy",
		"gerbera OR OR daisy":   "gerbera OR daisy",
		"flower NOT":            "flower NOT orange",
		"flower -repo:photos/*": "flower -orange",
		"flower NOT tag:latest": "flower -orange",
	} {
		_, err := index.ParseQuery(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestAnalyzer(t *testing.T) {
	for in, want := range map[string]string{"": "en", "de-AT": "de", "pt_BR": "pt", "nb": "no", "ja": "cjk", "Klingon": "standard", "el": "standard"} {
		require.Equal(t, want, index.Analyzer(in), in)
	}
}

// TestRepositoryFilterWithNonASCIIText: a repo: glob is matched by
// character, not by byte; OCI names are ASCII, but the filter takes any
// text.
func TestRepositoryFilterWithNonASCIIText(t *testing.T) {
	e := newEnv(t)
	e.publish(written("fotos/café", "sha256:m-cafe", "ollama/a", nil, day("2026-01-01"), photo("sha256:l-cafe", "A cup of coffee on a saucer.", "coffee")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	for _, q := range []string{"repo:fotos/café", "coffee repo:fotos/café", "repo:fotos/caf?", "repo:*/café", "repo:**é"} {
		require.Equal(t, []string{"sha256:l-cafe"}, layers(e.search(ix, q)), q)
	}
	require.Empty(t, e.search(ix, "repo:fotos/cafe"), "é is not e")
}

// TestUntaggedTakesTheTagOff: a tag deleted on its own leaves search:
// tag:X no longer finds the repository's photos that had it, other tags
// and repositories keep theirs, and a tag reported again is back.
func TestUntaggedTakesTheTagOff(t *testing.T) {
	e := newEnv(t)
	e.publish(written("photos/a", "sha256:m1", "ollama/a", []string{"latest", "v1"}, day("2026-01-01"), photo("sha256:l1", "A red bus.", "bus")))
	e.publish(written("photos/a", "sha256:m2", "ollama/a", []string{"latest"}, day("2026-01-02"), photo("sha256:l2", "A blue tram.", "tram")))
	e.publish(written("photos/b", "sha256:m3", "ollama/a", []string{"latest"}, day("2026-01-03"), photo("sha256:l3", "A green taxi.", "taxi")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	require.ElementsMatch(t, []string{"sha256:l2", "sha256:l3"}, layers(e.search(ix, "tag:latest")))

	e.publish(feed.Event{Kind: feed.Untagged, Registry: reg, Repository: "photos/a", Tags: []string{"latest"}})
	e.wait(ix)
	check := func(ix *index.Index) {
		t.Helper()
		require.Equal(t, []string{"sha256:l3"}, layers(e.search(ix, "tag:latest")), "only the other repository's photo")
		require.Equal(t, []string{"sha256:l1"}, layers(e.search(ix, "tag:v1")), "the photo's other tag stays")
		hits := e.search(ix, "bus")
		require.Len(t, hits, 1)
		require.Equal(t, []string{"v1"}, hits[0].Tags)
		require.Equal(t, []string{"sha256:l2"}, layers(e.search(ix, "tram")), "an untagged photo stays in search")
	}
	check(ix)
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	check(rebuilt)

	// The tag pushed again onto a photo: it is reported again.
	e.publish(written("photos/a", "sha256:m2", "ollama/a", []string{"latest"}, day("2026-01-04"), photo("sha256:l2", "A blue tram.", "tram")))
	e.wait(ix)
	require.ElementsMatch(t, []string{"sha256:l2", "sha256:l3"}, layers(e.search(ix, "tag:latest")))
}

// TestATagNamesOneManifest: a photo pushed to a tag that held another photo
// takes the tag; the other photo keeps its other tags and stays in search,
// in the running index, after a restart and in an index rebuilt from the
// stream.
func TestATagNamesOneManifest(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.publish(written("photos/a", "sha256:m1", "ollama/a", []string{"latest", "v1"}, day("2026-01-01"), photo("sha256:l1", "A red bus.", "bus")))
	e.publish(written("photos/a", "sha256:m2", "ollama/a", []string{"latest"}, day("2026-01-02"), photo("sha256:l2", "A blue tram.", "tram")))
	e.publish(written("photos/b", "sha256:m3", "ollama/a", []string{"latest"}, day("2026-01-03"), photo("sha256:l3", "A green taxi.", "taxi")))
	// Another model's description of the first photo names no tag: the
	// photo keeps what it has.
	e.publish(written("photos/a", "sha256:m1", "ollama/b", nil, day("2026-01-04"), photo("sha256:l1", "A red double-decker bus.", "bus")))
	e.wait(ix)
	check := func(ix *index.Index, when string) {
		t.Helper()
		require.ElementsMatch(t, []string{"sha256:l2", "sha256:l3"}, layers(e.search(ix, "tag:latest")), when)
		require.Equal(t, []string{"sha256:l1", "sha256:l1"}, layers(e.search(ix, "tag:v1")), when+": both models' descriptions")
		for _, h := range e.search(ix, "bus") {
			require.Equal(t, []string{"v1"}, h.Tags, when)
		}
		require.Equal(t, []string{"sha256:l2"}, layers(e.search(ix, "tram")), when)
	}
	check(ix, "running")
	stop()
	reopened, _ := e.open(dir, index.Options{})
	e.wait(reopened)
	check(reopened, "reopened")
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	check(rebuilt, "rebuilt")

	// The tag pushed back onto the first photo: it is that photo's again.
	e.publish(written("photos/a", "sha256:m1", "ollama/a", []string{"latest"}, day("2026-01-05"), photo("sha256:l1", "A red bus.", "bus")))
	e.wait(reopened)
	require.ElementsMatch(t, []string{"sha256:l1", "sha256:l1", "sha256:l3"}, layers(e.search(reopened, "tag:latest")))
	require.Empty(t, e.search(reopened, "tag:latest tram"))
}

// TestALostDeliveryIsReadAgain: an event delivered to the index's consumer
// that never reached the index (lost in a NATS restart; here fetched by
// someone else and never acknowledged) must not be acknowledged by the
// acknowledgement of the events after it, which the consumer's ack-all
// policy would do: the index notices the gap and reads the stream again
// from the first event it has not applied, without waiting out the ack
// wait.
func TestALostDeliveryIsReadAgain(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.publish(written("photos/a", "sha256:m1", "ollama/a", []string{"v1"}, day("2026-01-01"), photo("sha256:l1", "A red bus.", "bus")))
	e.wait(ix)
	stop()

	e.publish(written("photos/a", "sha256:m2", "ollama/a", []string{"v2"}, day("2026-01-02"), photo("sha256:l2", "A blue tram.", "tram")))
	e.publish(written("photos/a", "sha256:m3", "ollama/a", []string{"v3"}, day("2026-01-03"), photo("sha256:l3", "A green taxi.", "taxi")))
	ctx := context.Background()
	cons, err := e.js.Consumer(ctx, feed.Stream, ix.Consumer())
	require.NoError(t, err)
	stolen, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	n := 0
	for m := range stolen.Messages() {
		n++
		require.Contains(t, string(m.Data()), "tram", "the delivery lost on the way")
	}
	require.Equal(t, 1, n)

	again, _ := e.open(dir, index.Options{})
	e.wait(again)
	require.Equal(t, []string{"sha256:l3"}, layers(e.search(again, "taxi")))
	require.Equal(t, []string{"sha256:l2"}, layers(e.search(again, "tram")), "the lost delivery is read again, not acknowledged with the next")
	require.Equal(t, []string{"sha256:l1"}, layers(e.search(again, "bus")))
}
