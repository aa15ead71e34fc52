package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// scene is a picture the tests push and what the fake model says it shows.
type scene struct {
	name        string
	sky, ground color.RGBA
	sun         color.RGBA
	description string
	alt         string
	keywords    []string
}

var scenes = []scene{
	{"lake", color.RGBA{250, 190, 140, 255}, color.RGBA{40, 90, 110, 255}, color.RGBA{255, 240, 200, 255},
		"A calm mountain lake at dawn, pine trees reflected in still water under a pale orange sky.",
		"Mountain lake at dawn with pines reflected in the water", []string{"lake", "mountains", "dawn", "reflection"}},
	{"forklift", color.RGBA{200, 205, 215, 255}, color.RGBA{120, 110, 100, 255}, color.RGBA{250, 200, 40, 255},
		"A yellow forklift lifting a pallet of boxes in a bright warehouse aisle.",
		"Yellow forklift carrying a pallet in a warehouse", []string{"forklift", "warehouse", "pallet", "logistics"}},
	{"beach", color.RGBA{255, 170, 110, 255}, color.RGBA{220, 190, 140, 255}, color.RGBA{255, 120, 60, 255},
		"Waves rolling onto a sandy beach at sunset, a lone surfer walking with a board under his arm.",
		"Surfer on a beach at sunset", []string{"beach", "sunset", "surfer", "waves"}},
	{"tulips", color.RGBA{170, 210, 250, 255}, color.RGBA{70, 140, 60, 255}, color.RGBA{230, 40, 60, 255},
		"Red tulips in a spring garden, with a wooden bench in the background.",
		"Red tulips in a garden", []string{"tulips", "garden", "spring", "flowers"}},
	{"snow", color.RGBA{215, 225, 240, 255}, color.RGBA{245, 248, 252, 255}, color.RGBA{255, 255, 255, 255},
		"A snowy forest trail with footprints leading between tall fir trees.",
		"Snowy trail through a fir forest", []string{"snow", "forest", "winter", "trail"}},
	{"city", color.RGBA{30, 30, 70, 255}, color.RGBA{50, 50, 60, 255}, color.RGBA{250, 80, 200, 255},
		"A city street at night, neon shop signs reflected on the wet pavement.",
		"Neon-lit city street at night", []string{"city", "night", "neon", "street"}},
}

// picture draws s: a sky, a sun and hills, with a little noise (so that
// each seed gives other bytes, as photos do).
func (s scene) picture(t testing.TB, w, h int, seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	sunX, sunY, sunR := float64(w)*(0.25+0.1*float64(seed%5)), float64(h)*0.3, float64(h)*0.11
	for y := range h {
		for x := range w {
			fy := float64(y) / float64(h)
			hill := 0.62 + 0.08*math.Sin(float64(x)/float64(w)*6+float64(seed)) + 0.04*math.Sin(float64(x)/float64(w)*17)
			c := s.sky
			if fy > hill {
				c = s.ground
			} else if math.Hypot(float64(x)-sunX, float64(y)-sunY) < sunR {
				c = s.sun
			}
			shade := 1 - 0.35*fy
			r := uint32(x*73856093) ^ uint32(y*19349663) ^ uint32(seed*83492791)
			r ^= r >> 13
			r *= 0x5bd1e995
			r ^= r >> 15
			n := float64(r%13) - 6
			img.SetRGBA(x, y, color.RGBA{clamp(float64(c.R)*shade + n), clamp(float64(c.G)*shade + n), clamp(float64(c.B)*shade + n), 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 88}))
	return buf.Bytes()
}

func clamp(v float64) uint8 { return uint8(max(0, min(255, v))) }

// gallery is the whole stack (registry, NATS, notifier, workers, fake
// model) with the web server in front of it.
type gallery struct {
	*stacktest.Stack
	URL     string
	Web     *web.Server
	Catalog web.Catalog
	feed    *feed.Publisher

	mu     sync.Mutex
	scenes map[string]scene // by the digest of the image bytes
	// hold, when set, keeps the fake model from answering until it is closed.
	hold chan struct{}
	// refuse are the images (by digest) the fake model answers with an
	// error, and its text.
	refuse map[string]string
}

func startGallery(t *testing.T, token string) *gallery {
	t.Helper()
	return startGalleryWith(t, token, stacktest.Options{})
}

// startGalleryWith is startGallery on a stack started with opts.
func startGalleryWith(t *testing.T, token string, opts stacktest.Options) *gallery {
	t.Helper()
	s := stacktest.Start(t, opts)
	g := &gallery{Stack: s, feed: feed.NewPublisher(s.JS), scenes: map[string]scene{}, refuse: map[string]string{}}
	s.Model.Answer = g.answer
	g.Catalog = startCatalog(t, s.JS, s.Client.Names())
	g.Web, g.URL = g.serve(t, token, stacktest.Logger(t))
	return g
}

// serve starts a web server on the stack, on a loopback address.
func (g *gallery) serve(t *testing.T, token string, log *slog.Logger) (*web.Server, string) {
	t.Helper()
	srv, err := web.New(web.Options{
		Catalog: g.Catalog, JetStream: g.JS, Registry: g.Client, Registries: []string{g.RegistryHost}, Leases: g.Leases,
		Model: g.Describer.Model(), ThumbDir: t.TempDir(), Token: token, Log: log,
	})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	return srv, ts.URL
}

// answer is the fake model: what the scene of the image shows.
func (g *gallery) answer(c modeltest.Call) modeltest.Reply {
	g.mu.Lock()
	sc, ok := g.scenes[modeltest.Digest(c.Images[0])]
	refusal, refused := g.refuse[modeltest.Digest(c.Images[0])]
	hold := g.hold
	g.mu.Unlock()
	if refused {
		return modeltest.Reply{Status: http.StatusBadRequest, Content: refusal}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-time.After(8 * time.Second):
		}
	}
	if !ok {
		return modeltest.DescribeByDigest(c)
	}
	return modeltest.JSON(sc.description, sc.alt, sc.keywords...)
}

// pushScene pushes scene sc as repo:tag and waits until a worker has
// described it and the index holds the description.
func (g *gallery) pushScene(t *testing.T, repo, tag string, sc scene, seed int) {
	t.Helper()
	layer := g.pushPhoto(t, repo, tag, sc, seed)
	require.Eventually(t, func() bool {
		entries, err := g.Catalog.Photo(context.Background(), g.RegistryHost, repo, layer)
		return err == nil && len(entries) > 0 && entries[0].Description == sc.description
	}, 30*time.Second, 20*time.Millisecond, "%s:%s never became searchable", repo, tag)
}

// searchAPI asks GET /v1/search.
func (g *gallery) searchAPI(t *testing.T, q string) web.SearchAnswer {
	t.Helper()
	resp, err := httpGet(g.URL + "/v1/search?q=" + q)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var a web.SearchAnswer
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	return a
}
