package web_test

import (
	"bytes"
	"context"
	"image/jpeg"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestViewer: a photo page by tag; the keys ← → step through a search's
// results and Esc goes back to them; the picture zooms to 100% and back;
// the download is an attachment of the gallery's own JPEG.
func TestViewer(t *testing.T) {
	g := startGallery(t, "")
	trip := []scene{scenes[0], scenes[2], scenes[4]}
	for i, sc := range trip {
		g.pushScene(t, "photos/trip", sc.name, sc, i)
	}
	b := newBrowser(t, g.URL, 1280, 900)

	// The tag a person knows opens the photo it names, at its digest address.
	b.open("/p/" + g.RegistryHost + "/photos/trip:beach")
	require.Regexp(t, `^/p/`+g.RegistryHost+`/photos/trip@sha256:[0-9a-f]{64}$`, b.location())
	require.Equal(t, scenes[2].description, b.text("#description"))
	beach := b.location()
	require.Equal(t, "oras pull "+g.RegistryHost+"/photos/trip@"+b.text(".facts code.digest"), b.text("#cmd-pull"))
	resp, _ := request(t, http.MethodGet, g.URL+"/p/"+g.RegistryHost+"/photos/trip:nosuchtag", nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = request(t, http.MethodGet, g.URL+"/p/"+g.RegistryHost+"/photos/trip", nil, nil)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/r/"+g.RegistryHost+"/photos/trip", resp.Header.Get("Location"), "no tag: the repository")

	// A search's results, in their order; open the first.
	q := "lake OR beach OR snowy"
	b.open("/search?q=" + url.QueryEscape(q))
	order := b.texts(".grid .desc")
	require.Len(t, order, 3)
	b.follow(".grid .card-link")
	require.Equal(t, order[0], b.text("#description"))
	require.Contains(t, b.location(), "in=search")
	b.imagesLoaded("#picture")
	everyView(b, "viewer")

	// The next photo's picture is fetched ahead.
	prefetch := b.attrs(`link[rel="prefetch"]`, "href")
	require.Len(t, prefetch, 1)
	require.True(t, strings.HasPrefix(prefetch[0], "/thumbs/l/"+g.RegistryHost+"/photos/trip@sha256:"), prefetch[0])

	// → twice, ← once: the results' order, computed on the server.
	key := func(k string) { b.leave(chromedp.KeyEvent(k)) }
	key(kb.ArrowRight)
	require.Equal(t, order[1], b.text("#description"))
	key(kb.ArrowRight)
	require.Equal(t, order[2], b.text("#description"))
	require.Empty(t, b.attrs("#next", "href"), "the last result has no next")
	key(kb.ArrowLeft)
	require.Equal(t, order[1], b.text("#description"))
	// Esc: back to the results, at this photo's card.
	key(kb.Escape)
	require.Equal(t, "/search?q="+url.QueryEscape(q)+"#at-1", b.location())
	require.Equal(t, order, b.texts(".grid .desc"))
	b.do(chromedp.Poll[chromedp.Void](`document.activeElement.closest("#at-1") !== null`, chromedp.WithPollingTimeout(5*time.Second)))

	// The same through a repository's grid, newest first, and through
	// the grid of every photo.
	b.open("/r/" + g.RegistryHost + "/photos/trip")
	order = b.texts(".tiles .caption")
	require.Equal(t, []string{scenes[4].description, scenes[2].description, scenes[0].description}, order)
	b.follow("#at-1 .tile-link")
	require.Equal(t, order[1], b.text("#description"))
	key(kb.ArrowRight)
	require.Equal(t, order[2], b.text("#description"))
	require.Contains(t, b.location(), "in=grid&q="+url.QueryEscape(g.RegistryHost+"/photos/trip")+"&at=2")
	key(kb.Escape)
	require.Equal(t, "/r/"+g.RegistryHost+"/photos/trip#at-2", b.location())
	b.open("/")
	all := b.texts(".tiles .caption")
	b.follow("#at-0 .tile-link")
	require.Equal(t, all[0], b.text("#description"))
	key(kb.ArrowRight)
	require.Equal(t, all[1], b.text("#description"))
	key(kb.Escape)
	require.Equal(t, "/#at-1", b.location())

	// Zoom: the picture fits its column; a click shows it at 100% (the
	// full-size JPEG), Esc fits it again, and so does Z twice.
	b.open(beach)
	b.imagesLoaded("#picture")
	fit := get(b, chromedp.Evaluate[[]float64](`(() => { const i = document.getElementById("picture"); return [i.clientWidth, i.naturalWidth]; })()`))
	require.Less(t, fit[0], fit[1], "fitted, the picture is narrower than its pixels")
	b.do(chromedp.Click(chromedp.ID("picture")))
	b.do(chromedp.Poll[chromedp.Void](`(() => { const i = document.getElementById("picture"); return i.complete && i.src.includes("/thumbs/f/") && i.clientWidth === i.naturalWidth; })()`, chromedp.WithPollingTimeout(20*time.Second)))
	require.Equal(t, []string{"true"}, b.attrs("#zoom", "aria-pressed"))
	b.shot("zoomed")
	b.do(chromedp.KeyEvent(kb.Escape))
	require.Equal(t, []string{"false"}, b.attrs("#zoom", "aria-pressed"))
	require.Equal(t, beach, b.location(), "Esc at 100% only fits the picture")
	b.do(chromedp.KeyEvent("z"))
	require.Equal(t, []string{"true"}, b.attrs("#zoom", "aria-pressed"))
	b.do(chromedp.KeyEvent("z"))
	require.Equal(t, []string{"false"}, b.attrs("#zoom", "aria-pressed"))

	// Keyboard only: Tab from the top reaches Previous/Back/Next, then the
	// picture, each with a visible focus ring.
	b.open(beach)
	var focused []string
	for range 12 {
		b.do(chromedp.KeyEvent(kb.Tab))
		id := get(b, chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.tagName`))
		ring := get(b, chromedp.Evaluate[string](`getComputedStyle(document.activeElement).outlineStyle`))
		require.NotEqual(t, "none", ring, "focus on %s is visible", id)
		focused = append(focused, id)
	}
	require.Less(t, indexOf(focused, "back"), indexOf(focused, "zoom"), "Tab order: %v", focused)
	require.Less(t, indexOf(focused, "zoom"), indexOf(focused, "download"), "Tab order: %v", focused)

	// The download: an attachment, the gallery's own JPEG of the photo.
	href := b.attrs("#download", "href")[0]
	resp, body := request(t, http.MethodGet, g.URL+href, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="beach.jpg"`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	img, err := jpeg.Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, 800, img.Bounds().Dx(), "full size")
	require.False(t, bytes.Equal(scenes[2].picture(t, 800, 600, 1), []byte(body)), "never the pushed bytes")
}

// everyView saves screenshots of the page at desktop (1280×900, the tab's
// size) and phone size, in light and dark, for a person to look at.
func everyView(b *browser, name string) {
	b.t.Helper()
	for _, phone := range []bool{false, true} {
		if phone {
			b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		}
		for _, dark := range []bool{false, true} {
			b.dark(dark)
			suffix := map[bool]string{false: "desktop", true: "phone"}[phone] + "-" + map[bool]string{false: "light", true: "dark"}[dark]
			b.shot(name + "-" + suffix)
		}
	}
	b.dark(false)
	b.do(chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900))
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return 1 << 30
}

// TestCorrectionsAskFirst: replacing a person's description asks first
// (the server refuses without the confirmation), and every earlier
// description can be restored, as a correction.
func TestCorrectionsAskFirst(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/bugs", "latest", scenes[3], 1)
	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/p/" + g.RegistryHost + "/photos/bugs:latest")
	page := b.location()

	// A model's description is replaced without a question.
	corrected := "A ladybird on a red tulip, the bench behind it out of focus."
	b.do(chromedp.Click(chromedp.CSS("#correct summary")), chromedp.SetValue(chromedp.ID("f-description"), corrected))
	b.follow(`#correct button[type="submit"]`)
	require.Equal(t, corrected, b.text("#description"))

	// Describe again now asks first, and queues nothing until asked.
	calls := len(g.Model.Calls())
	b.follow("#describe-again")
	require.Equal(t, "/actions/describe", b.location())
	require.Contains(t, b.text("#confirm-title"), "Replace")
	require.Contains(t, b.text("blockquote.current"), corrected)
	everyView(b, "confirm")
	b.follow("#confirm-cancel")
	require.Equal(t, page, b.location())
	require.Equal(t, corrected, b.text("#description"))

	// So does another correction.
	b.do(chromedp.Click(chromedp.CSS("#correct summary")), chromedp.SetValue(chromedp.ID("f-description"), "Just a tulip."))
	b.follow(`#correct button[type="submit"]`)
	require.Equal(t, "Just a tulip.", b.text("blockquote.proposed"))
	b.follow("#confirm-cancel")

	// The server refuses a replace that is not confirmed, or confirmed
	// for another description.
	_, html := request(t, http.MethodGet, g.URL+page, nil, nil)
	csrf := csrfField.FindStringSubmatch(html)[1]
	layer := page[strings.LastIndex(page, "@")+1:]
	form := url.Values{"csrf": {csrf}, "registry": {g.RegistryHost}, "repository": {"photos/bugs"}, "layer": {layer}}
	same := http.Header{"Origin": {g.URL}}
	for _, confirm := range []string{"", "0123456789abcdef01234567"} {
		f := url.Values{"confirm": {confirm}}
		for k, v := range form {
			f[k] = v
		}
		resp, body := request(t, http.MethodPost, g.URL+"/actions/describe", f, same)
		require.Equal(t, http.StatusConflict, resp.StatusCode, "confirm %q", confirm)
		require.Contains(t, body, corrected)
		f.Set("description", "Just a tulip.")
		resp, _ = request(t, http.MethodPost, g.URL+"/actions/correct", f, same)
		require.Equal(t, http.StatusConflict, resp.StatusCode, "confirm %q", confirm)
	}
	time.Sleep(300 * time.Millisecond)
	require.Len(t, g.Model.Calls(), calls, "nothing was described again")
	_, m := g.Manifest(t, "photos/bugs", "latest")
	require.Equal(t, photo.PersonPrefix, m.Annotations[registry.AnnotationModel])

	// Confirmed, the model describes it again.
	b.follow("#describe-again")
	b.follow("#confirm-replace")
	require.True(t, strings.HasSuffix(b.location(), "?flash=describing"), b.location())
	require.Eventually(t, func() bool {
		entries, err := g.Catalog.Photo(context.Background(), g.RegistryHost, "photos/bugs", layer)
		return err == nil && len(entries) > 0 && entries[0].Description == scenes[3].description && !photo.IsPerson(entries[0].Model)
	}, 30*time.Second, 50*time.Millisecond)
	g.WaitIdle(t)

	// The person's words are in the history: restore them (no question:
	// the model's are shown now). They come back as a correction.
	b.open(page)
	require.Equal(t, scenes[3].description, b.text("#description"))
	restore := `//li[p[normalize-space()="` + corrected + `"]]//button`
	b.leave(chromedp.Click(chromedp.Search(restore)))
	require.True(t, strings.HasSuffix(b.location(), "?flash=restored"), b.location())
	require.Equal(t, corrected, b.text("#description"))
	everyView(b, "restored")
	job := correctionJob(t, g, corrected)
	require.NotNil(t, job.Correction)
	_, m = g.Manifest(t, "photos/bugs", "latest")
	require.Equal(t, corrected, m.Annotations[registry.AnnotationDescription])
	require.Equal(t, photo.PersonPrefix, m.Annotations[registry.AnnotationModel])
}

// TestUnknownPath: an address no page lives at is the styled error page,
// status 404, with a way back.
func TestUnknownPath(t *testing.T) {
	g := startGallery(t, "")
	resp, body := request(t, http.MethodGet, g.URL+"/nope/nothing", nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "No such page")
	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/nope/nothing")
	require.Equal(t, "No such page", b.text("#error-title"))
	everyView(b, "404")
	b.follow("#error-home")
	require.Equal(t, "/", b.location())
}

// TestPhotosLikeThis: with semantic search on, a photo page links to the
// photos whose descriptions mean the most nearly the same, by their
// vectors; with it off, there is no link and no such page.
func TestPhotosLikeThis(t *testing.T) {
	g := startGallery(t, "")
	dogs := []scene{scenes[0], scenes[3], scenes[5]}
	dogs[0].description, dogs[0].alt, dogs[0].keywords = "A brown dog asleep on a sofa in the living room.", "Dog asleep on a sofa", []string{"dog", "sofa"}
	dogs[1].description, dogs[1].alt, dogs[1].keywords = "Two puppies asleep on a sofa by the window.", "Puppies on a sofa", []string{"puppy", "sofa"}
	dogs[2].description, dogs[2].alt, dogs[2].keywords = "A red car parked by the road.", "Red car", []string{"car", "road"}
	for i, sc := range dogs {
		g.pushScene(t, "photos/home", sc.name, sc, i)
	}
	page := func(base string) (string, string) {
		resp, _ := request(t, http.MethodGet, base+"/p/"+g.RegistryHost+"/photos/home:"+dogs[0].name, nil, nil)
		require.Equal(t, http.StatusFound, resp.StatusCode)
		_, body := request(t, http.MethodGet, base+resp.Header.Get("Location"), nil, nil)
		return resp.Header.Get("Location"), body
	}
	photoPath, body := page(g.URL)
	require.NotContains(t, body, `id="like"`, "no semantic search, no link")
	likePath := "/like/" + strings.TrimPrefix(photoPath, "/p/")
	resp, _ := request(t, http.MethodGet, g.URL+likePath, nil, nil)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The same stack with an embedding model.
	emb := modeltest.NewOllama("nomic-embed-text:latest")
	t.Cleanup(emb.Close)
	u, err := url.Parse(emb.URL)
	require.NoError(t, err)
	semantic, _ := stacktest.FollowIndex(t, g.JS, index.Options{Registry: g.Client.Names().Canonical,
		Embedder: embed.NewOllama(embed.OllamaOptions{BaseURL: u, Model: "nomic-embed-text"})})
	require.NoError(t, semantic.Wait(context.Background(), g.JS))
	require.Eventually(t, func() bool { done, waiting := semantic.Embedded(); return done >= 3 && waiting == 0 }, 30*time.Second, 20*time.Millisecond)
	plain := g.Catalog
	g.Catalog = semantic
	_, base := g.serve(t, "", stacktest.Logger(t))
	g.Catalog = plain

	_, body = page(base)
	require.Contains(t, body, `href="`+likePath+`" id="like"`)
	resp, body = request(t, http.MethodGet, base+likePath, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, grid, ok := strings.Cut(body, `<ul class="grid across">`)
	require.True(t, ok, "a grid of photos like it")
	require.Contains(t, grid, dogs[1].description, "the puppies on a sofa are like it")
	require.NotContains(t, grid, dogs[0].description, "not the photo itself")
	require.Less(t, strings.Index(grid, dogs[1].description), max(strings.Index(grid, dogs[2].description), len(grid)), "the nearest first")
	b := newBrowser(t, base, 1280, 900)
	b.open(likePath)
	loaded, total := b.imagesLoaded("img")
	require.Equal(t, total, loaded, "every picture loads")
	everyView(b, "like")
}
