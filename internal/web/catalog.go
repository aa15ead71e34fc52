package web

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Catalog is the search index as the gallery reads it; *index.Index is one.
type Catalog interface {
	// Search returns the best hits of q and how many match in all.
	Search(ctx context.Context, q Query) ([]Hit, int, error)
	// Repositories lists every repository with indexed photos, newest activity first.
	Repositories(ctx context.Context) ([]Repository, error)
	// Photos lists one repository's photos, newest first (one entry per
	// photo), and the total.
	Photos(ctx context.Context, registry, repository string, offset, limit int) ([]Entry, int, error)
	// Photo returns every description of the photos of a manifest digest
	// (or of the manifest a layer digest belongs to), newest first.
	Photo(ctx context.Context, registry, repository, digest string) ([]Entry, error)
	// Wait returns once every event stored in the description stream
	// before the call is applied.
	Wait(ctx context.Context, js jetstream.JetStream) error
}

// Entry is one photo's description by one describer.
type Entry struct {
	Registry    string    `json:"registry"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Manifest    string    `json:"manifest,omitempty"`
	Layer       string    `json:"layer"`
	MediaType   string    `json:"mediaType,omitempty"`
	Tags        []string  `json:"tags"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description"`
	Alt         string    `json:"alt"`
	Keywords    []string  `json:"keywords"`
	Text        string    `json:"text"`
	Model       string    `json:"model"`
	Created     time.Time `json:"created"`
	Stored      string    `json:"stored"`
}

// Hit is one search result.
type Hit struct {
	Entry
	Score float64 `json:"score"`
}

// Repository is one repository with indexed photos.
type Repository struct {
	Registry, Repository string
	Photos               int
	Latest               time.Time
}

// Query is a parsed search.
type Query struct {
	Text          string
	Repository    string
	Model         string
	Tag           string
	After, Before time.Time
	Limit         int
	Offset        int
}

// parseQuery reads what a person typed.
func parseQuery(s string) Query { return Query{Text: s} }
