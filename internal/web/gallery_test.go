package web_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
)

// TestBrowseSearchAndCorrect is a person's first visit: the front page, a
// repository, a search, a photo, and a correction of its description.
func TestBrowseSearchAndCorrect(t *testing.T) {
	g := startGallery(t, "")
	b := newBrowser(t, g.URL, 1280, 900)
	travel := []scene{scenes[0], scenes[2], scenes[4], scenes[5]}
	for i, sc := range travel {
		g.pushScene(t, "photos/travel", sc.name, sc, i)
	}
	// Descriptions carry their time in whole seconds: the next is newer.
	time.Sleep(1100 * time.Millisecond)
	g.pushScene(t, "warehouse/inventory", "latest", scenes[1], 9)

	// The front page is every photo, the newest first, in one grid; the
	// repositories are a sidebar.
	b.open("/")
	require.Equal(t, []string{"photos/travel 4", "warehouse/inventory 1"}, b.texts(".side-repo"))
	alts := b.attrs(".tiles .thumb", "alt")
	require.Len(t, alts, 5)
	require.Equal(t, scenes[1].alt, alts[0], "the newest first")
	require.Equal(t, []string{"described", "described", "described", "described", "described"}, b.attrs(".tiles .tile", "data-state"))
	loaded, total := b.imagesLoaded(".tiles .thumb")
	require.Equal(t, 5, total)
	require.Equal(t, 5, loaded, "every thumbnail loads")
	b.shot("front-page")

	// A repository: the same grid, of its photos only, each with its alt
	// text and its description on hover.
	b.follow(`.side-repo[href$="/photos/travel"]`)
	require.Equal(t, "/r/"+g.RegistryHost+"/photos/travel", b.location())
	alts = b.attrs(".tiles .thumb", "alt")
	require.Len(t, alts, 4)
	for _, sc := range travel {
		require.Contains(t, alts, sc.alt)
	}
	require.Contains(t, b.texts(".tiles .caption"), scenes[0].description)
	loaded, total = b.imagesLoaded(".tiles .thumb")
	require.Equal(t, 4, total)
	require.Equal(t, 4, loaded, "every thumbnail loads")
	b.shot("repository")
	// The same in the dark, and on a phone.
	b.dark(true)
	b.shot("repository-dark")
	b.dark(false)
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.shot("repository-phone")
	b.do(chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900))

	// Search from the box on the page.
	b.leave(chromedp.SendKeys(chromedp.ID("q"), "forklift\n"))
	require.Equal(t, "/search?q=forklift", b.location())
	require.Equal(t, []string{scenes[1].description}, b.texts(".grid .desc"))
	b.imagesLoaded(".grid .thumb")
	b.shot("search")
	require.Equal(t, scenes[1].description, g.searchAPI(t, "forklift").Results[0].Description)

	// The photo: preview, description, alt, keywords, commands to copy.
	b.follow(".grid .card-link")
	require.True(t, strings.HasPrefix(b.location(), "/p/"+g.RegistryHost+"/warehouse/inventory@sha256:"))
	require.Equal(t, scenes[1].description, b.text("#description"))
	require.Equal(t, scenes[1].alt, b.text("#alt"))
	fetch := b.text("#cmd-fetch")
	require.Regexp(t, `^oras manifest fetch --pretty `+g.RegistryHost+`/warehouse/inventory@sha256:[0-9a-f]{64}$`, fetch)
	loaded, _ = b.imagesLoaded(".preview img")
	require.Equal(t, 1, loaded)
	b.shot("photo")

	// Correct it, as a person who knows better.
	corrected := "A red forklift stacking pallets of paint tins in the north warehouse."
	b.do(
		chromedp.Click(chromedp.CSS("#correct summary")),
		chromedp.SetValue(chromedp.ID("f-description"), corrected),
		chromedp.SetValue(chromedp.ID("f-alt"), "Red forklift with paint tins"),
		chromedp.SetValue(chromedp.ID("f-keywords"), "forklift, paint, warehouse"),
	)
	b.shot("correcting")
	b.follow(`#correct button[type="submit"]`)
	// The page waited for the worker and the index: the correction shows at once.
	require.True(t, strings.HasSuffix(b.location(), "?flash=corrected"), b.location())
	require.Equal(t, "Your description is written and searchable.", b.text(".flash"))
	require.Equal(t, corrected, b.text("#description"))

	// The correction is a job for the workers, with everything the person wrote.
	job := correctionJob(t, g, corrected)
	require.Equal(t, "web", job.Source)
	require.Equal(t, "latest", job.Tag)
	require.Equal(t, "Red forklift with paint tins", job.Correction.Alt)
	require.Equal(t, []string{"forklift", "paint", "warehouse"}, job.Correction.Keywords)
	require.NotEmpty(t, job.Correction.Layer)

	// A worker wrote it into the registry (`regscribe show` reads the same
	// annotations), as a person's description.
	_, m := g.Manifest(t, "warehouse/inventory", "latest")
	require.Equal(t, corrected, m.Annotations[registry.AnnotationDescription])
	require.Equal(t, "person", m.Annotations[registry.AnnotationModel])
	require.Equal(t, "Red forklift with paint tins", m.Annotations[registry.AnnotationAlt])

	// In annotation mode the person's description replaced the model's in
	// the manifest: it is the current one, on top; the model's words stay
	// in the photo's history, marked replaced.
	history := b.texts(".timeline .who")
	require.Len(t, history, 2)
	require.Contains(t, history[0], "a person")
	require.NotContains(t, history[0], "replaced")
	require.Contains(t, history[1], g.Describer.Model())
	require.Contains(t, history[1], "replaced")
	require.Equal(t, []string{scenes[1].description}, b.texts(".timeline li.replaced > p:not(.who)"))
	require.Len(t, b.texts(".timeline li.replaced"), 1)
	b.shot("corrected")
	require.Empty(t, g.searchAPI(t, "yellow").Results, "the replaced words are not searched")
	hits := g.searchAPI(t, "paint").Results
	require.NotEmpty(t, hits)
	require.Equal(t, corrected, hits[0].Description)
	require.Equal(t, "person", hits[0].Model)
}

// correctionJob finds the result of the job that carried the correction
// (the workers settled it).
func correctionJob(t *testing.T, g *gallery, description string) queue.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := g.JS.OrderedConsumer(ctx, queue.ResultStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{queue.ResultSubject(queue.LiveBatch)}})
	require.NoError(t, err)
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(20 * time.Second))
		require.NoError(t, err, "no result for the correction job")
		var r queue.Result
		require.NoError(t, json.Unmarshal(msg.Data(), &r))
		if c := r.Job.Correction; c != nil && c.Description == description {
			return r.Job
		}
	}
}
