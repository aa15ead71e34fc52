package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/thumb"
)

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"home", "photo", "waiting", "search", "jobs", "run", "error", "confirm", "like"}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/grid.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"repoURL":  repoURL,
	"photoURL": func(e Entry) string { return photoURL(e.Registry, e.Repository, photoDigest(e)) },
	"thumbURL": thumbURL,
	"card": func(e Entry) cardView {
		return cardView{Entry: e, Href: photoURL(e.Registry, e.Repository, photoDigest(e))}
	},
	"listed": func(e Entry, in, q string, at int) cardView {
		return cardView{Entry: e, Href: list{In: in, Query: q, At: at}.viewURL(e), ID: cardID(at), Marks: markedWords(q)}
	},
	"highlight": highlight,
	"tileIn": func(t Tile, registry, repository string, at int) tileView {
		scope := registry
		if repository != "" {
			scope += "/" + repository
		}
		return tileView{Tile: t, Href: list{In: listGrid, Query: scope, At: at}.viewURL(t.Entry), ID: cardID(at)}
	},
	"searchFor": searchFor,
	"downloadURL": func(e Entry) string {
		return "/download/" + pathEscape(e.Registry) + "/" + pathEscapeRepo(e.Repository) + "@" + e.Layer
	},
	"breakable": breakable,
	"ago":       ago,
	"when":      func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
	"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short":     shortDigest,
	"isPerson":  photo.IsPerson,
	"describer": func(model string) string {
		if !photo.IsPerson(model) {
			return model
		}
		if name, ok := strings.CutPrefix(model, photo.PersonPrefix+":"); ok {
			return name + " (a person)"
		}
		return "a person"
	},
	"join": strings.Join,
	"list": func(v ...any) []any { return v },
	"add":  func(a, b int) int { return a + b },
	"sub":  func(a, b int) int { return a - b },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + many
	},
	"tileThumb": func(t Tile) string {
		return "/thumbs/s/" + pathEscape(t.Registry) + "/" + pathEscapeRepo(t.Repository) + "@" + cmp.Or(t.Layer, t.Digest)
	},
	"stateLabel":  stateLabel,
	"gridSize":    func() int { return thumb.Grid },
	"previewSize": func() int { return thumb.Preview },
}

// cardView is one photo of a grid: its card links to Href, the photo's
// page opened from the list the card is in; ID names the card in its list
// (the photo page's way back scrolls to it).
type cardView struct {
	Entry
	Href, ID string
	// Marks are the words of the search the card was found by, to
	// highlight in its description.
	Marks []string
}

// tileView is one photo of the gallery's grid: its tile links to Href, the
// photo's page opened from the grid; ID names the tile in the grid.
type tileView struct {
	Tile
	Href, ID string
}

// stateLabel names a photo's state as the grid shows it.
func stateLabel(s index.State) string {
	switch s {
	case index.StateQueued:
		return "describing…"
	case index.StateFailed:
		return "failed"
	case index.StateRefused:
		return "not an image"
	}
	return string(s)
}

// photoDigest is the digest a photo page is addressed by: its layer, so an
// album's photos each have their own page.
func photoDigest(e Entry) string {
	if e.Layer != "" {
		return e.Layer
	}
	return e.Digest
}

// thumbURL is the address of e's picture at size "s", "l" or "f".
func thumbURL(e Entry, size string) string {
	return "/thumbs/" + size + "/" + pathEscape(e.Registry) + "/" + pathEscapeRepo(e.Repository) + "@" + e.Layer
}

func repoURL(registry, repository string) string {
	return "/r/" + pathEscape(registry) + "/" + pathEscapeRepo(repository)
}

func photoURL(registry, repository, digest string) string {
	return "/p/" + pathEscape(registry) + "/" + pathEscapeRepo(repository) + "@" + digest
}

func pathEscape(s string) string { return url.PathEscape(s) }

// pathEscapeRepo escapes each segment of a repository name, keeping its slashes.
func pathEscapeRepo(repo string) string {
	parts := strings.Split(repo, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func shortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// ago says how long ago t was, as a person would.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 30*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
	return t.UTC().Format("2 Jan 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func queryEscape(s string) string { return url.QueryEscape(s) }

// breakable is a command or reference as HTML that a narrow column wraps
// after a '/' or before an '@' rather than inside a host name; copying it
// gives the same text (<wbr> holds none).
func breakable(s string) template.HTML {
	e := template.HTMLEscapeString(s)
	e = strings.ReplaceAll(e, "/", "/<wbr>")
	e = strings.ReplaceAll(e, "@", "<wbr>@")
	return template.HTML(e)
}
