package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxLimit is the most results one /v1/search answer holds.
const MaxLimit = 1000

// MaxOffset is the deepest result a /v1/search answer or a page of the
// gallery starts at: deeper pages are refused (the API) or show the
// deepest one (the gallery).
const MaxOffset = 100_000

// Result is one match of GET /v1/search.
type Result struct {
	Registry    string    `json:"registry"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Layer       string    `json:"layer"`
	Tags        []string  `json:"tags"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Alt         string    `json:"alt"`
	Keywords    []string  `json:"keywords"`
	Text        string    `json:"text"`
	Model       string    `json:"model"`
	Stored      string    `json:"stored"`
	Created     time.Time `json:"created"`
	Score       float64   `json:"score"`
}

// SearchAnswer is the body of GET /v1/search.
type SearchAnswer struct {
	Results []Result `json:"results"`
	// Total is how many photos match in all (Results are the best Limit).
	Total int `json:"total"`
	// Suggestion is set when the words of q found nothing: the query
	// spelled with the words the index holds, whose results these are.
	Suggestion string `json:"suggestion,omitempty"`
}

// apiSearch is GET /v1/search?q=QUERY&limit=N&offset=N.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	text := strings.TrimSpace(v.Get("q"))
	if text == "" {
		apiError(w, http.StatusBadRequest, errors.New("q is required: GET /v1/search?q=forklift&limit=20"))
		return
	}
	limit, err := intParam(v.Get("limit"), 20, 1, MaxLimit)
	if err != nil {
		apiError(w, http.StatusBadRequest, errors.New("limit: "+err.Error()))
		return
	}
	offset, err := intParam(v.Get("offset"), 0, 0, MaxOffset)
	if err != nil {
		apiError(w, http.StatusBadRequest, errors.New("offset: "+err.Error()))
		return
	}
	q, err := parseQuery(text)
	if err != nil {
		apiError(w, http.StatusBadRequest, errors.New("q: "+err.Error()))
		return
	}
	q.Limit, q.Offset = limit, offset
	f, err := s.find(r.Context(), q)
	if err != nil {
		s.opts.Log.Error("search", "err", err)
		apiError(w, http.StatusInternalServerError, errors.New("the search failed: "+err.Error()))
		return
	}
	out := SearchAnswer{Results: make([]Result, 0, len(f.Hits)), Total: f.Total, Suggestion: f.Suggestion}
	for _, h := range f.Hits {
		out.Results = append(out.Results, Result{
			Registry: h.Registry, Repository: h.Repository, Digest: h.Digest, Layer: h.Layer,
			Tags: nonNil(h.Tags), Title: h.Title, Description: h.Description, Alt: h.Alt,
			Keywords: nonNil(h.Keywords), Text: h.Text, Model: h.Model, Stored: h.Stored, Created: h.Created, Score: h.Score,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// intParam reads an integer parameter within [lo, hi]; empty is def.
func intParam(s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("not a number: " + strconv.Quote(s))
	}
	if n < lo || n > hi {
		return 0, errors.New(strconv.Itoa(n) + " is out of range " + strconv.Itoa(lo) + ".." + strconv.Itoa(hi))
	}
	return n, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
