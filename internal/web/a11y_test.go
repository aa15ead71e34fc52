package web_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// axeScript finds axe-core, the accessibility engine the pages are checked
// with: REGSCRIBE_AXE (the path of axe.min.js), else npm's global or the
// current directory's node_modules. Without it the test skips, and fails
// when CI=true: CI installs it (`npm install axe-core`, see .ci/run).
func axeScript(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p := os.Getenv("REGSCRIBE_AXE"); p != "" {
		candidates = append(candidates, p)
	}
	if out, err := exec.Command("npm", "root", "-g").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(out)), "axe-core", "axe.min.js"))
	}
	for _, p := range candidates {
		if b, err := os.ReadFile(p); err == nil {
			return string(b)
		}
	}
	why := "no axe-core (npm install -g axe-core, or set REGSCRIBE_AXE to its axe.min.js)"
	if os.Getenv("CI") == "true" {
		t.Fatal(why + ": the accessibility check must run in CI")
	}
	t.Skip(why + ": accessibility check skipped")
	return ""
}

// axeViolation is one rule a page breaks, as axe-core reports it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// violations runs axe-core on the page the tab shows: WCAG 2.x A and AA
// and axe's best practices.
func (b *browser) violations(axe string) []axeViolation {
	b.t.Helper()
	if !get(b, chromedp.Evaluate[bool](`typeof axe !== "undefined"`)) {
		b.do(chromedp.Evaluate[chromedp.Void](axe))
	}
	return get(b, chromedp.Evaluate[[]axeViolation](
		`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}, resultTypes: ["violations"]}).then(r => r.violations)`,
		chromedp.EvalAwaitPromise))
}

// accessible fails the test with every violation of the page the tab shows.
func (b *browser) accessible(axe, page string) {
	b.t.Helper()
	for _, v := range b.violations(axe) {
		var where []string
		for i, n := range v.Nodes {
			if i == 3 {
				where = append(where, "…")
				break
			}
			where = append(where, n.HTML)
		}
		b.t.Errorf("%s: %s (%s): %s\n    %s", page, v.ID, v.Impact, v.Help, strings.Join(where, "\n    "))
	}
}

// TestPagesAreAccessible checks every page of the gallery with axe-core in
// Chromium: light and dark on a desktop, and on a phone.
func TestPagesAreAccessible(t *testing.T) {
	axe := axeScript(t)
	g := startGallery(t, "")
	for i, sc := range []scene{scenes[0], scenes[2], scenes[4]} {
		g.pushScene(t, "photos/travel", sc.name, sc, i)
	}
	time.Sleep(1100 * time.Millisecond)
	g.pushScene(t, "warehouse/inventory", "latest", scenes[1], 9)
	b := newBrowser(t, g.URL, 1280, 900)
	b.open("/search?q=forklift")
	b.follow(".grid .card-link")
	photo := b.location()

	pages := map[string]string{
		"front page":   "/",
		"repository":   "/r/" + g.RegistryHost + "/photos/travel",
		"search":       "/search?q=lake",
		"empty search": "/search",
		"no results":   "/search?q=zebra",
		"photo":        photo,
		"jobs":         "/jobs",
		"not found":    "/no/such/page",
		"photo by tag": "/p/" + g.RegistryHost + "/photos/travel:" + scenes[0].name,
	}
	for _, look := range []struct {
		name  string
		dark  bool
		phone bool
	}{{"light", false, false}, {"dark", true, false}, {"phone", false, true}} {
		b.dark(look.dark)
		if look.phone {
			b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		}
		for name, path := range pages {
			b.open(path)
			b.imagesLoaded("img")
			b.accessible(axe, name+" ("+look.name+")")
		}
		b.do(chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900))
	}

	// The engine sees what it should: a picture without alt text and a
	// button without a name are violations.
	b.open("/")
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("main").insertAdjacentHTML("beforeend",
		'<img src="/static/favicon.svg"><button></button>')`))
	var ids []string
	for _, v := range b.violations(axe) {
		ids = append(ids, v.ID)
	}
	require.Contains(t, ids, "image-alt")
	require.Contains(t, ids, "button-name")
}
