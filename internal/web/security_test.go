package web_test

import (
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

func TestCheckExposure(t *testing.T) {
	t.Parallel()
	token := "0123456789abcdef0123"
	cases := []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:8089", "", true},
		{"127.0.0.2:8089", "", true},
		{"[::1]:8089", "", true},
		{"localhost:8089", "", true},
		{"off", "", true},
		{"0.0.0.0:8089", "", false},
		{":8089", "", false},
		{"[::]:8089", "", false},
		{"192.168.1.20:8089", "", false},
		{"gallery.example.com:443", "", false},
		{"0.0.0.0:8089", "short", false},
		{"0.0.0.0:8089", token, true},
		{"192.168.1.20:8089", token, true},
		{"no-port", "", false},
	}
	for _, c := range cases {
		err := web.CheckExposure(c.listen, c.token)
		if c.ok {
			require.NoError(t, err, c.listen)
		} else {
			require.Error(t, err, c.listen)
			require.NotContains(t, err.Error(), token)
		}
	}
}

func request(t *testing.T, method, u string, body url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestSecurity checks, on one stack, what keeps the gallery safe: the token
// off loopback, loopback names without one, CSRF on every action, the
// search API's errors, and thumbnails that are never the registry's bytes.
func TestSecurity(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/safe", "latest", scenes[0], 1)
	tiles, _, err := g.Catalog.Tiles(context.Background(), g.RegistryHost, "photos/safe", 0, 10)
	require.NoError(t, err)
	require.Len(t, tiles, 1)
	photo := tiles[0].Entry
	photoPath := "/p/" + g.RegistryHost + "/photos/safe@" + photo.Layer

	t.Run("token", func(t *testing.T) {
		token := "s3cret-token-for-the-gallery-only"
		var logs stacktest.LogBuffer
		_, base := g.serve(t, token, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		for _, c := range []struct {
			name   string
			header http.Header
			want   int
		}{
			{"none", nil, http.StatusUnauthorized},
			{"wrong bearer", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
			{"bearer", http.Header{"Authorization": {"Bearer " + token}}, http.StatusOK},
			{"basic, any user", http.Header{"Authorization": {"Basic " + basic("ann", token)}}, http.StatusOK},
			{"basic, wrong password", http.Header{"Authorization": {"Basic " + basic("ann", "guess")}}, http.StatusUnauthorized},
		} {
			for _, path := range []string{"/", "/v1/search?q=lake", photoPath, "/static/style.css"} {
				resp, body := request(t, http.MethodGet, base+path, nil, c.header)
				require.Equal(t, c.want, resp.StatusCode, "%s %s", c.name, path)
				require.Equal(t, web.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
				require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
				require.NotContains(t, body, token)
				if c.want == http.StatusUnauthorized {
					require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
				}
			}
		}
		require.NotContains(t, logs.String(), token)
	})

	t.Run("loopback names only without a token", func(t *testing.T) {
		resp, _ := request(t, http.MethodGet, g.URL+"/", nil, http.Header{"Host": {"gallery.example.com"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		u, _ := url.Parse(g.URL)
		resp, _ = request(t, http.MethodGet, g.URL+"/", nil, http.Header{"Host": {"localhost:" + u.Port()}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("csrf", func(t *testing.T) {
		_, page := request(t, http.MethodGet, g.URL+photoPath, nil, nil)
		m := csrfField.FindStringSubmatch(page)
		require.NotNil(t, m, "the photo page has forms with a CSRF token")
		form := func(csrf string) url.Values {
			return url.Values{"csrf": {csrf}, "registry": {g.RegistryHost}, "repository": {"photos/safe"}, "layer": {photo.Layer}}
		}
		for _, c := range []struct {
			name   string
			form   url.Values
			header http.Header
		}{
			{"no token", form(""), nil},
			{"another token", form("Zm9yZ2Vk"), nil},
			{"cross-site", form(m[1]), http.Header{"Sec-Fetch-Site": {"cross-site"}}},
			{"another origin", form(m[1]), http.Header{"Origin": {"http://evil.example"}}},
		} {
			resp, _ := request(t, http.MethodPost, g.URL+"/actions/describe", c.form, c.header)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, c.name)
		}
		calls := len(g.Model.Calls())
		resp, _ := request(t, http.MethodPost, g.URL+"/actions/describe", form(m[1]), http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {g.URL}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, photoPath+"?flash=describing", resp.Header.Get("Location"))
		// The forced job describes the photo again: one more model call.
		require.Eventually(t, func() bool { return len(g.Model.Calls()) > calls }, 20*time.Second, 20*time.Millisecond)
		g.WaitIdle(t)
	})

	t.Run("search API", func(t *testing.T) {
		for _, q := range []string{"?q=lake&limit=0", "?q=lake&limit=x", "?q=lake&limit=1001", "?limit=5", "?q=lake&offset=-1", "?q=lake&offset=100001"} {
			resp, body := request(t, http.MethodGet, g.URL+"/v1/search"+q, nil, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e map[string]string
			require.NoError(t, json.Unmarshal([]byte(body), &e), q)
			require.NotEmpty(t, e["error"], q)
		}
		resp, body := request(t, http.MethodGet, g.URL+"/v1/search?q=lake&limit=5", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var raw struct {
			Results []map[string]any `json:"results"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &raw))
		require.NotEmpty(t, raw.Results)
		for _, field := range []string{"registry", "repository", "digest", "tags", "title", "description", "alt", "keywords", "text", "model", "score", "stored", "created", "layer"} {
			require.Contains(t, raw.Results[0], field)
		}
	})

	t.Run("thumbnails", func(t *testing.T) {
		resp, body := request(t, http.MethodGet, g.URL+"/thumbs/s/"+g.RegistryHost+"/photos/safe@"+photo.Layer, nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
		require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		img, err := jpeg.Decode(strings.NewReader(body))
		require.NoError(t, err)
		require.Equal(t, 480, img.Bounds().Dx())

		for name, path := range map[string]string{
			"another repository": "/thumbs/s/" + g.RegistryHost + "/photos/other@" + photo.Layer,
			"another registry":   "/thumbs/s/example.com/photos/safe@" + photo.Layer,
			"another size":       "/thumbs/xl/" + g.RegistryHost + "/photos/safe@" + photo.Layer,
			"not a digest":       "/thumbs/s/" + g.RegistryHost + "/photos/safe@..%2F..%2Fetc",
			"unknown layer":      "/thumbs/s/" + g.RegistryHost + "/photos/safe@sha256:" + strings.Repeat("0", 64),
		} {
			resp, _ := request(t, http.MethodGet, g.URL+path, nil, nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, name)
		}

		// An SVG with a script, pushed as a PNG and described by someone
		// (an older tool): its thumbnail is the gallery's placeholder.
		svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>`)
		d := g.Push(t, "photos/evil", "", stacktest.File{Name: "evil.png", MediaType: "image/png", Data: svg})
		_, m := g.Manifest(t, "photos/evil", d.Digest.String())
		_, err = g.feed.Publish(context.Background(), feed.Event{Kind: feed.Found, Registry: g.RegistryHost, Repository: "photos/evil",
			Digest: d.Digest.String(), By: "person", Photos: []feed.Photo{{Manifest: d.Digest.String(), Layer: m.Layers[0].Digest.String(),
				MediaType: "image/png", Description: "An innocent picture.", Model: "person", Stored: "annotation"}}}, "")
		require.NoError(t, err)
		require.NoError(t, g.Catalog.Wait(context.Background(), g.JS))
		resp, body = request(t, http.MethodGet, g.URL+"/thumbs/s/"+g.RegistryHost+"/photos/evil@"+m.Layers[0].Digest.String(), nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
		require.NotContains(t, body, "alert")
		require.Contains(t, body, "no preview")
		require.NotContains(t, resp.Header.Get("Cache-Control"), "immutable")
		// Nor is it a download: the gallery hands out only pictures it made.
		resp, body = request(t, http.MethodGet, g.URL+"/download/"+g.RegistryHost+"/photos/evil@"+m.Layers[0].Digest.String(), nil, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Empty(t, resp.Header.Get("Content-Disposition"))
		require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		require.NotContains(t, body, "alert(")
		g.WaitIdle(t)
	})
}

func basic(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestPhotoPageListsEveryDescriber: a photo described by the configured
// model and found described by another one (a referrer an older model
// wrote, put on the stream by reprocess) shows both, the newest first.
func TestPhotoPageListsEveryDescriber(t *testing.T) {
	g := startGallery(t, "")
	g.pushScene(t, "photos/two", "latest", scenes[3], 1)
	tiles, _, err := g.Catalog.Tiles(context.Background(), g.RegistryHost, "photos/two", 0, 1)
	require.NoError(t, err)
	e := tiles[0].Entry
	_, err = g.feed.Publish(context.Background(), feed.Event{Kind: feed.Found, Registry: g.RegistryHost, Repository: "photos/two",
		Digest: e.Digest, Tags: e.Tags, By: "openai/gpt-4o-mini", Photos: []feed.Photo{{Manifest: e.Digest, Layer: e.Layer,
			MediaType: "image/jpeg", Description: "Tulips, red, in rows.", Model: "openai/gpt-4o-mini", Created: time.Now().UTC(),
			Stored: "referrer sha256:" + strings.Repeat("a", 64)}}}, "")
	require.NoError(t, err)
	require.NoError(t, g.Catalog.Wait(context.Background(), g.JS))
	resp, page := request(t, http.MethodGet, g.URL+"/p/"+g.RegistryHost+"/photos/two@"+e.Layer, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, timeline, found := strings.Cut(page, "Every description it has had")
	require.True(t, found)
	newer := strings.Index(timeline, "Tulips, red, in rows.")
	older := strings.Index(timeline, scenes[3].description)
	require.Positive(t, newer)
	require.Greater(t, older, newer, "both are listed, the newest first")
	require.Contains(t, page, "openai/gpt-4o-mini")
	require.Contains(t, page, "ollama/"+stacktest.Model)
}
