package index_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/index"
)

// The query language beyond words: -word and NOT exclude, OR widens, and
// a search whose words find nothing is offered the words the index holds.
func TestSearchExcludesWidensAndSuggests(t *testing.T) {
	e := newEnv(t)
	e.publish(written("photos/garden", "sha256:m-orange", "ollama/a", nil, day("2026-01-10"),
		photo("sha256:l-orange", "An orange gerbera flower in a clay pot.", "flower", "gerbera")))
	e.publish(written("photos/garden", "sha256:m-daisy", "ollama/a", nil, day("2026-01-11"),
		photo("sha256:l-daisy", "A white daisy flower on the lawn, with red petals nearby.", "flower", "daisy")))
	e.publish(written("photos/garden", "sha256:m-bird", "ollama/a", nil, day("2026-01-12"),
		photo("sha256:l-bird", "A ladybird climbs a green leaf.", "insect", "ladybird")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	for q, want := range map[string][]string{
		"flower":                     {"sha256:l-orange", "sha256:l-daisy"},
		"flower -orange":             {"sha256:l-daisy"},
		"flower NOT orange":          {"sha256:l-daisy"},
		`flower -"red petals"`:       {"sha256:l-orange"},
		"-orange -daisy":             {"sha256:l-bird"}, // only exclusions: the newest that pass
		"flower -the":                {"sha256:l-orange", "sha256:l-daisy"},
		"gerbera OR daisy":           {"sha256:l-orange", "sha256:l-daisy"},
		"gerbera OR ladybird":        {"sha256:l-orange", "sha256:l-bird"},
		"gerbera OR ladybird -clay":  {"sha256:l-bird"},
		`"clay pot" OR leaf`:         {"sha256:l-orange", "sha256:l-bird"},
		"green gerbera OR ladybird":  {"sha256:l-bird"}, // green, and either
		"gerbera daisy":              {},
		"flower -orange repo:garden": {"sha256:l-daisy"},
	} {
		t.Run(q, func(t *testing.T) {
			require.ElementsMatch(t, want, layers(e.search(ix, q)))
		})
	}

	for typed, want := range map[string]string{
		"ladybrid":                          "ladybird",
		"lady bird":                         "ladybird",
		"gerbra -orange repo:garden":        "gerbera -orange repo:garden",
		"orange flowr":                      "orange flower", // the word as the description writes it, not its stem
		`daisy "ladybrid leaf" OR ladybrid`: `daisy "ladybrid leaf" OR ladybird`,
	} {
		t.Run("suggest "+typed, func(t *testing.T) {
			q, err := index.ParseQuery(typed)
			require.NoError(t, err)
			got, ok, err := ix.Suggest(e.ctx, q)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, want, got.String())
		})
	}
	for _, typed := range []string{"flower", "zebra", `"ladybrid"`, "xq"} {
		q, err := index.ParseQuery(typed)
		require.NoError(t, err)
		_, ok, err := ix.Suggest(e.ctx, q)
		require.NoError(t, err)
		require.False(t, ok, "nothing to suggest for %s", typed)
	}
	require.Empty(t, e.search(ix, "ladybrid"), "the search itself is exact")
}
