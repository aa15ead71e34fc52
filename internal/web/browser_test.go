package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium finds the browser: REGSCRIBE_CHROMIUM, else chromium,
// chromium-browser or google-chrome on PATH. Without one the test skips
// (and fails when CI=true: CI installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REGSCRIBE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium on PATH (apt-get install -y chromium, or set REGSCRIBE_CHROMIUM): browser tests must run in CI")
	}
	t.Skip("no Chromium on PATH (apt-get install -y chromium, or set REGSCRIBE_CHROMIUM): browser tests skipped")
	return ""
}

// browser is a headless Chromium tab for one test.
type browser struct {
	t   *testing.T
	ctx context.Context
	// shots is the directory screenshots go to.
	shots string
	base  string
}

var (
	shotsOnce sync.Once
	shotsDir  string
)

// screenshotDir is one temporary directory for every screenshot of the
// run, kept after the tests so a person can look at them.
func screenshotDir(t *testing.T) string {
	shotsOnce.Do(func() {
		var err error
		shotsDir, err = os.MkdirTemp("", "regscribe-web-screenshots-")
		require.NoError(t, err)
	})
	return shotsDir
}

// newBrowser starts Chromium on a fresh profile, without anything that
// reaches the internet, with a viewport of w×h, for base (the server).
func newBrowser(t *testing.T, base string, w, h int) *browser {
	t.Helper()
	path := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first action starts the browser, on a context without deadline
	// (the deadline would end the browser).
	require.NoError(t, chromedp.Do(ctx), "start Chromium at %s", path)
	dir := screenshotDir(t)
	t.Logf("screenshots of %s: %s", t.Name(), dir)
	return &browser{t: t, ctx: ctx, shots: dir, base: base}
}

// do runs steps with a deadline.
func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...))
}

// get runs one action that returns a value, with a deadline.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(b.t, err)
	return v
}

// open navigates to path on the server and waits for the page's main.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("main")))
}

// text returns the visible text of the first element matching the CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return get(b, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
}

// texts returns the text content of every element matching the CSS selector.
func (b *browser) texts(sel string) []string {
	b.t.Helper()
	return get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.textContent.trim())`))
}

// attrs returns attribute name of every element matching the CSS selector.
func (b *browser) attrs(sel, name string) []string {
	b.t.Helper()
	return get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll(`+jsString(sel)+`)].map(e => e.getAttribute(`+jsString(name)+`) ?? "")`))
}

// location is the path (and query) the tab shows.
func (b *browser) location() string {
	b.t.Helper()
	return strings.TrimPrefix(get(b, chromedp.Location()), b.base)
}

// shot saves a full-page screenshot named name.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	file := filepath.Join(b.shots, strings.ReplaceAll(b.t.Name(), "/", "-")+"-"+name+".png")
	require.NoError(b.t, os.WriteFile(file, png, 0o644))
	b.t.Logf("screenshot: %s", file)
}

// imagesLoaded waits until every <img> matching sel finished loading and
// reports how many have pixels (a thumbnail that failed shows none).
func (b *browser) imagesLoaded(sel string) (loaded, total int) {
	b.t.Helper()
	get(b, chromedp.Poll[chromedp.Void](`[...document.querySelectorAll(`+jsString(sel)+`)].every(i => { i.loading = "eager"; return i.complete; })`, chromedp.WithPollingTimeout(30*time.Second)))
	res := get(b, chromedp.Evaluate[[]int](`(() => { const imgs = [...document.querySelectorAll(`+jsString(sel)+`)]; return [imgs.filter(i => i.naturalWidth > 0).length, imgs.length]; })()`))
	return res[0], res[1]
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// follow clicks the element matching the CSS selector and waits until the
// tab has loaded another address (a link followed, a form sent).
func (b *browser) follow(sel string) {
	b.t.Helper()
	b.leave(chromedp.Click(chromedp.CSS(sel)))
}

// leave runs action and waits until the tab has loaded another address.
func (b *browser) leave(action chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	before := get(b, chromedp.Location())
	b.do(action)
	require.Eventually(b.t, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || loc == before {
			return false
		}
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && document.querySelector("main") !== null`))
		return err == nil && ready
	}, 40*time.Second, 50*time.Millisecond, "the page stayed at %s", before)
}

// dark makes the tab prefer a dark colour scheme (or not).
func (b *browser) dark(on bool) {
	b.t.Helper()
	scheme := "light"
	if on {
		scheme = "dark"
	}
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}
