package stacktest

import (
	"context"
	"net/http"
	"regexp"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// TagLinkGate provokes the re-push race: armed for a tag before a push, it
// holds the registry's link of that tag (after the push was stored and
// announced) until a worker has resolved the tag, so the push's job finds
// the tag still on the earlier push, as it does on a busy machine. A held
// link is let go after Timeout (10 s if zero), so a worker that never
// looks cannot hang the registry.
type TagLinkGate struct {
	Timeout time.Duration

	mu      sync.Mutex
	armed   map[string]bool
	waiting map[string]chan struct{} // open while a link is held
	raced   int                      // links released by a worker's resolve
}

// Arm makes the gate hold the next link of repo:tag.
func (g *TagLinkGate) Arm(repo, tag string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.armed == nil {
		g.armed, g.waiting = map[string]bool{}, map[string]chan struct{}{}
	}
	g.armed[repo+":"+tag] = true
}

// Hold holds the link of repo:tag when the gate is armed for it, until a
// worker resolves the tag or Timeout passes.
func (g *TagLinkGate) Hold(repo, tag string) {
	key := repo + ":" + tag
	g.mu.Lock()
	if !g.armed[key] {
		g.mu.Unlock()
		return
	}
	delete(g.armed, key)
	ch := make(chan struct{})
	g.waiting[key] = ch
	g.mu.Unlock()
	timeout := g.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	select {
	case <-ch:
	case <-time.After(timeout):
		g.mu.Lock()
		if g.waiting[key] == ch {
			delete(g.waiting, key)
		}
		g.mu.Unlock()
	}
}

var tagRead = regexp.MustCompile(`^/v2/(.+)/manifests/([^/:]+)$`)

// Resolved releases a held link when r reads the manifest at its tag: a
// worker has seen the tag without it.
func (g *TagLinkGate) Resolved(r *http.Request) {
	m := tagRead.FindStringSubmatch(r.URL.Path)
	if m == nil || (r.Method != http.MethodHead && r.Method != http.MethodGet) {
		return
	}
	key := m[1] + ":" + m[2]
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.waiting[key]; ch != nil {
		close(ch)
		delete(g.waiting, key)
		g.raced++
	}
}

// Races is how many held links a worker's resolve released.
func (g *TagLinkGate) Races() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.raced
}

// Watch is a registry proxy (Options.RegistryProxy) that tells the gate
// of every tag the workers resolve.
func (g *TagLinkGate) Watch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		g.Resolved(r)
	})
}

// Storage wraps CNCF Distribution's storage (Options.RegistryStorage) with
// the gate on the file that links a tag to its manifest
// (…/repositories/<repo>/_manifests/tags/<tag>/current/link), which the
// registry writes after it stored the manifest and announced it.
func (g *TagLinkGate) Storage(d storagedriver.StorageDriver) storagedriver.StorageDriver {
	return gatedLinks{d, g}
}

type gatedLinks struct {
	storagedriver.StorageDriver
	gate *TagLinkGate
}

var tagLink = regexp.MustCompile(`/repositories/(.+)/_manifests/tags/([^/]+)/current/link$`)

func (d gatedLinks) PutContent(ctx context.Context, path string, content []byte) error {
	if m := tagLink.FindStringSubmatch(path); m != nil {
		d.gate.Hold(m[1], m[2])
	}
	return d.StorageDriver.PutContent(ctx, path, content)
}
