package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// pushPhoto pushes scene sc as repo:tag without waiting for its
// description, and returns the image's digest.
func (g *gallery) pushPhoto(t *testing.T, repo, tag string, sc scene, seed int) string {
	t.Helper()
	data := sc.picture(t, 800, 600, seed)
	layer := modeltest.Digest(data)
	g.mu.Lock()
	g.scenes[layer] = sc
	g.mu.Unlock()
	g.Push(t, repo, tag, stacktest.File{Name: sc.name + ".jpg", MediaType: "image/jpeg", Data: data})
	return layer
}

// states polls the grid until it shows n tiles and returns their states.
func (b *browser) states(n int) []string {
	b.t.Helper()
	get(b, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll(".tiles .tile").length === %d`, n), chromedp.WithPollingTimeout(30*time.Second)))
	return b.attrs(".tiles .tile", "data-state")
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestPhotosShowFromTheirPush: ten photos pushed while the model is busy
// are all on the front page at once, each marked "describing…", before any
// is described; as the model answers, the page shows them described,
// without a reload.
func TestPhotosShowFromTheirPush(t *testing.T) {
	g := startGallery(t, "")
	hold := make(chan struct{})
	g.mu.Lock()
	g.hold = hold
	g.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			g.mu.Lock()
			g.hold = nil
			g.mu.Unlock()
			close(hold)
		}
	}
	t.Cleanup(release)
	for i := range 10 {
		g.pushPhoto(t, "photos/holiday", fmt.Sprintf("day%d", i), scenes[i%len(scenes)], i)
	}
	// The registry notifies in the background: wait for the ten
	// announcements to reach the index.
	require.Eventually(t, func() bool {
		_, n, err := g.Catalog.Tiles(context.Background(), "", "", 0, 20)
		return err == nil && n == 10
	}, 30*time.Second, 20*time.Millisecond, "the pushes never reached the index")
	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/")
	require.Equal(t, repeat("queued", 10), b.states(10), "every photo pushed shows before it is described")
	require.Equal(t, repeat("describing…", 10), b.texts(".tiles .state"))
	require.Contains(t, b.text(".photos > .lead"), "10 describing…")
	loaded, total := b.imagesLoaded(".tiles .thumb")
	require.Equal(t, 10, total)
	require.Equal(t, 10, loaded, "a photo waiting to be described shows its picture")
	b.shot("describing")

	// The page of a photo waiting says so.
	resp, body := request(t, http.MethodGet, g.URL+b.attrs(".tiles .tile-link", "href")[0], nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "Its job is queued")

	release()
	get(b, chromedp.Poll[chromedp.Void](`[...document.querySelectorAll(".tiles .tile")].filter(t => t.dataset.state === "described").length === 10`,
		chromedp.WithPollingTimeout(40*time.Second)))
	require.Equal(t, repeat("described", 10), b.states(10))
	require.Empty(t, b.texts(".tiles .state"))
	captions := b.texts(".tiles .caption")
	for _, sc := range scenes {
		require.Contains(t, captions, sc.description)
	}
	b.shot("described")
	b.dark(true)
	b.shot("described-dark")
	b.dark(false)
	// On a phone: three or four a row.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.imagesLoaded(".tiles .thumb")
	perRow := get(b, chromedp.Evaluate[int](`(() => { const t = [...document.querySelectorAll(".tiles .tile")]; return t.filter(e => e.offsetTop === t[0].offsetTop).length; })()`))
	require.GreaterOrEqual(t, perRow, 3, "photos a row on a phone")
	require.LessOrEqual(t, perRow, 4, "photos a row on a phone")
	b.shot("described-phone")
	b.dark(true)
	b.shot("described-phone-dark")
}

// TestFailedAndNotImagesShowWhy: a photo the model refuses shows as
// failed, with the model's reason on hover and on its page; a text file
// pushed with oras's default media type shows as not an image, and why.
func TestFailedAndNotImagesShowWhy(t *testing.T) {
	g := startGallery(t, "")
	bad := g.pushPhoto(t, "photos/mixed", "bad", scenes[1], 1)
	g.mu.Lock()
	g.refuse[bad] = "the model cannot read this image"
	g.mu.Unlock()
	g.Push(t, "photos/mixed", "notes", stacktest.File{Name: "notes.jpg", MediaType: ocispec.MediaTypeImageLayer,
		Data: []byte("Shopping list: bread, milk, film for the camera.\n")})
	g.pushScene(t, "photos/mixed", "good", scenes[0], 2)

	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/r/" + g.RegistryHost + "/photos/mixed")
	get(b, chromedp.Poll[chromedp.Void](`(() => { const s = [...document.querySelectorAll(".tiles .tile")].map(t => t.dataset.state).sort().join(); if (s !== "described,failed,refused") { location.reload(); return false; } return true; })()`,
		chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(time.Second)))
	b.do(chromedp.WaitReady(chromedp.CSS("main")))

	failed := b.attrs(`.tile[data-state="failed"] .tile-link`, "title")
	require.Len(t, failed, 1)
	require.Contains(t, failed[0], "failed: ")
	require.Contains(t, failed[0], "the model cannot read this image")
	require.Equal(t, "failed", b.text(`.tile[data-state="failed"] .state`))
	refused := b.attrs(`.tile[data-state="refused"] .tile-link`, "title")
	require.Len(t, refused, 1)
	require.Contains(t, refused[0], "not an image: ")
	require.Contains(t, refused[0], "holds text")
	require.Equal(t, "not an image", b.text(`.tile[data-state="refused"] .state`))
	require.Contains(t, b.text(".photos > .lead"), "1 failed")
	b.shot("failed-and-refused")
	b.dark(true)
	b.shot("failed-and-refused-dark")
	b.dark(false)

	// Each has a page that says why.
	b.follow(`.tile[data-state="failed"] .tile-link`)
	require.Equal(t, "failed", b.text("#state"))
	require.Contains(t, b.text("#state-reason"), "the model cannot read this image")
	b.shot("failed-page")
	b.open("/")
	b.follow(`.tile[data-state="refused"] .tile-link`)
	require.Equal(t, "not an image", b.text("#state"))
	require.Contains(t, b.text("#state-reason"), "holds text")
}

// TestModelDownShowsABanner: with the model unreachable, every page says
// so, since when and how many jobs wait, and so does `regscribe status`;
// the photo pushed shows, describing.
func TestModelDownShowsABanner(t *testing.T) {
	g := startGalleryWith(t, "", stacktest.Options{OllamaURL: "http://" + stacktest.DeadAddress(t)})
	g.pushPhoto(t, "photos/waiting", "latest", scenes[3], 1)
	// The registry notifies in the background: wait for the announcement
	// to reach the index (the front page reloads itself only while it
	// shows a photo waiting).
	require.Eventually(t, func() bool {
		_, n, err := g.Catalog.Tiles(context.Background(), "", "", 0, 20)
		return err == nil && n == 1
	}, 30*time.Second, 20*time.Millisecond, "the push never reached the index")
	b := newBrowser(t, g.URL, 1280, 900)
	for _, path := range []string{"/", "/jobs", "/search?q=tulips"} {
		b.open(path)
		get(b, chromedp.Poll[chromedp.Void](`(() => { if (document.querySelector(".banner")) return true; location.reload(); return false; })()`,
			chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(time.Second)))
		b.do(chromedp.WaitReady(chromedp.CSS("main")))
		banner := b.text(".banner")
		require.Contains(t, banner, "The model ollama/"+stacktest.Model+" is unreachable since")
		// A push makes a job by digest and one by tag.
		require.Regexp(t, `; [12] jobs? waits? for it\.`, banner)
		require.Contains(t, banner, "connection refused")
	}
	b.open("/")
	require.Equal(t, []string{"queued"}, b.states(1))
	b.shot("model-down")
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.shot("model-down-phone")
	b.dark(true)
	b.shot("model-down-phone-dark")
}

// TestGridLoadsMoreAsYouScroll: past a page of photos, scrolling to the
// end of the grid loads the next ones into it; without script, the "More
// photos" link is that next page.
func TestGridLoadsMoreAsYouScroll(t *testing.T) {
	g := startGallery(t, "")
	n := web.GridPage + 30
	at := time.Now().UTC().Add(-time.Hour)
	for i := range n {
		digest := fmt.Sprintf("sha256:%064x", i+1)
		_, err := g.feed.Publish(context.Background(), feed.Event{Kind: feed.Found, Registry: g.RegistryHost, Repository: "photos/many", Digest: digest,
			By: "ollama/" + stacktest.Model, Photos: []feed.Photo{{Manifest: digest, Layer: fmt.Sprintf("sha256:%064x", i+100_000),
				MediaType: "image/jpeg", Description: fmt.Sprintf("Photo number %d.", i), Model: "ollama/" + stacktest.Model,
				Created: at.Add(time.Duration(i) * time.Second), Stored: "annotation"}}}, "")
		require.NoError(t, err)
	}
	require.NoError(t, g.Catalog.Wait(context.Background(), g.JS))

	resp, body := request(t, http.MethodGet, g.URL+"/?page=2", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 30, strings.Count(body, `<li class="tile"`), "the link's page holds the rest")
	require.Contains(t, body, "Photo number 0.", "the oldest last")

	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/")
	require.Len(t, b.attrs(".tiles .tile", "data-state"), web.GridPage)
	require.Equal(t, "/?page=2", b.attrs("a[data-more]", "href")[0])
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, document.body.scrollHeight)`))
	require.Len(t, b.states(n), n, "scrolling loaded the rest")
	captions := b.texts(".tiles .caption")
	require.Equal(t, fmt.Sprintf("Photo number %d.", n-1), captions[0])
	require.Equal(t, "Photo number 0.", captions[n-1])
	require.Equal(t, "/", b.location(), "the page stays where it is")
}
