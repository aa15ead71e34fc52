package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/web"
)

// Search forgives a typing error and says which word it used, excludes
// and widens, and refuses a query it cannot read with how to write it:
// in the API and on the page alike.
func TestSearchForgivesAndTeaches(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/garden", "tulips", scenes[3], 1)
	g.pushScene(t, "photos/travel", "lake", scenes[0], 2)

	search := func(q string) (int, web.SearchAnswer, map[string]string) {
		t.Helper()
		resp, body := request(t, http.MethodGet, g.URL+"/v1/search?q="+url.QueryEscape(q), nil, nil)
		var a web.SearchAnswer
		var e map[string]string
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.Unmarshal([]byte(body), &a), body)
		} else {
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
		}
		return resp.StatusCode, a, e
	}
	repos := func(a web.SearchAnswer) []string {
		out := []string{}
		for _, r := range a.Results {
			out = append(out, r.Repository)
		}
		return out
	}

	status, a, _ := search("tulpis")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "tulips", a.Suggestion, "the index's own word")
	require.Equal(t, []string{"photos/garden"}, repos(a), "and its photo")

	for q, want := range map[string][]string{
		"garden":              {"photos/garden"},
		"garden -red":         {},
		"garden NOT red":      {},
		"tulips OR lake":      {"photos/garden", "photos/travel"},
		"pine OR bench -lake": {"photos/garden"},
		"repo:garden":         {"photos/garden"},
		"repo:photos -tulips": {"photos/travel"},
	} {
		status, a, _ := search(q)
		require.Equal(t, http.StatusOK, status, q)
		require.ElementsMatch(t, want, repos(a), q)
		require.Empty(t, a.Suggestion, q)
	}

	for q, form := range map[string]string{
		"lake after:yesterday": "after:2026-01-01",
		`"unclosed`:            `"blue sea"`,
		"tulips OR":            "gerbera OR daisy",
	} {
		status, _, e := search(q)
		require.Equal(t, http.StatusBadRequest, status, q)
		require.Contains(t, e["error"], form, q)
	}

	// The page: a link to the word it used, and a query it cannot read
	// explained.
	resp, body := request(t, http.MethodGet, g.URL+"/search?q=tulpis", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `Did you mean <a href="/search?q=tulips">tulips</a>?`)
	require.Contains(t, body, scenes[3].alt)
	resp, body = request(t, http.MethodGet, g.URL+"/search?q="+url.QueryEscape("lake after:yesterday"), nil, nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "after:yesterday is not a date: write YYYY-MM-DD, after:2026-01-01")
	require.Contains(t, body, "README")
}

// The search page's examples are the library's own words, each a link to
// its search; an empty library shows fixed ones.
func TestSearchExamplesComeFromTheLibrary(t *testing.T) {
	g := startGallery(t, "")
	resp, body := request(t, http.MethodGet, g.URL+"/search", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `<a href="/search?q=forklift%20warehouse"><code>forklift warehouse</code></a>`, "an empty library: fixed examples")

	g.pushScene(t, "photos/garden", "tulips", scenes[3], 1)
	g.pushScene(t, "photos/garden", "spring", scene{name: "crocus", sky: scenes[3].sky, ground: scenes[3].ground, sun: scenes[3].sun,
		description: "Purple crocuses in a spring garden.", alt: "Crocuses", keywords: []string{"garden", "spring", "crocus", "purple"}}, 2)
	g.pushScene(t, "photos/travel", "lake", scenes[0], 3)
	for _, q := range []string{"", "zebra"} {
		resp, body = request(t, http.MethodGet, g.URL+"/search?q="+q, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, `<a href="/search?q=garden%20spring"><code>garden spring</code></a>`, "the words most photos have, q=%q", q)
		require.Contains(t, body, `<code>repo:travel</code>`, "the newest repository's last segment")
		require.NotContains(t, body, "forklift", q)
		require.NotContains(t, body, "gerbera", q)
	}
	resp, body = request(t, http.MethodGet, g.URL+"/search?q="+url.QueryEscape("garden spring"), nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "2 photos for")
}

// Search results mark the words found; keywords and tags are searches.
func TestSearchResultsMarkTheWordsAndLinkTheirKeywords(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/travel", "lake", scenes[0], 1)
	resp, body := request(t, http.MethodGet, g.URL+"/search?q="+url.QueryEscape("lakes dawn -snow repo:photos"), nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "A calm mountain <mark>lake</mark> at <mark>dawn</mark>, pine trees", "the words searched, a plural finding the singular")
	require.NotContains(t, body, "<mark>photos</mark>", "a filter marks nothing")
	require.Contains(t, body, `<a href="/search?q=reflection">reflection</a>`, "a keyword is its search")
	require.Contains(t, body, `href="/search?q=repo%3aphotos%2ftravel%20tag%3alake"`, "a tag is the search for it in its repository")
	resp, body = request(t, http.MethodGet, g.URL+"/search?q="+url.QueryEscape("reflection"), nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "1 photo for")
}
