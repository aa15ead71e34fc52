package vision_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/vision"
)

func TestLanguageName(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]string{
		"de": "German", "de-AT": "German", "DE_ch": "German", "fr": "French", "es": "Spanish", "it": "Italian",
		"nl": "Dutch", "pt": "Portuguese", "pt-BR": "Brazilian Portuguese", "ja": "Japanese", "zh": "Chinese",
		"zh-TW": "Traditional Chinese", "zh-Hans": "Simplified Chinese", "ko": "Korean", "pl": "Polish",
		"sv": "Swedish", "Deutsch": "Deutsch", "Klingon": "Klingon", "": "",
	} {
		require.Equal(t, want, vision.LanguageName(tag), tag)
	}
}

func TestPromptString(t *testing.T) {
	t.Parallel()
	require.Equal(t, vision.DefaultPrompt, vision.Prompt{}.String())
	require.Equal(t, "Describe it.", vision.Prompt{Text: "  Describe it.\n"}.String())

	de := vision.Prompt{Language: "de"}.String()
	require.True(t, strings.HasPrefix(de, vision.DefaultPrompt))
	require.True(t, strings.HasSuffix(de, " Write the description, alt text and keywords in German."), de)

	require.NotEqual(t, vision.Prompt{}.Digest(), vision.Prompt{Language: "de"}.Digest(), "descriptions are remembered per language")
	require.Equal(t, vision.Prompt{Language: "de"}.Digest(), vision.Prompt{Language: "de"}.Digest())
}

// The schema is valid for OpenAI's strict mode (every property required,
// no others) and the default prompt asks for every field, the visible text
// included, with "" when there is none.
func TestSchemaAndPromptAskForEveryField(t *testing.T) {
	t.Parallel()
	var s struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties bool                       `json:"additionalProperties"`
	}
	require.NoError(t, json.Unmarshal(vision.Schema, &s))
	var props []string
	for k := range s.Properties {
		props = append(props, k)
	}
	require.ElementsMatch(t, props, s.Required)
	require.ElementsMatch(t, []string{"description", "alt", "keywords", "text"}, s.Required)
	require.False(t, s.AdditionalProperties)
	for _, field := range s.Required {
		require.Contains(t, vision.DefaultPrompt, `"`+field+`"`)
	}
	require.Contains(t, vision.DefaultPrompt, `"" when there are none`)
}

func TestLoadPrompt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "prompt.txt")
	require.NoError(t, os.WriteFile(file, []byte("\nDescribe the bird and its plumage.\n"), 0o600))
	empty := filepath.Join(dir, "empty.txt")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	big := filepath.Join(dir, "big.txt")
	require.NoError(t, os.WriteFile(big, make([]byte, vision.MaxPromptFileBytes+1), 0o600))

	p, err := vision.LoadPrompt("", "", "")
	require.NoError(t, err)
	require.Equal(t, vision.DefaultPrompt, p.String())

	p, err = vision.LoadPrompt(" Say what you see. ", "", "fr")
	require.NoError(t, err)
	require.Equal(t, vision.Prompt{Text: "Say what you see.", Language: "fr"}, p)

	p, err = vision.LoadPrompt("", file, "de")
	require.NoError(t, err)
	require.Equal(t, "Describe the bird and its plumage. Write the description, alt text and keywords in German.", p.String())

	for name, tc := range map[string]struct{ text, file, errHas string }{
		"both":    {"Say what you see.", file, "both set"},
		"missing": {"", filepath.Join(dir, "nope.txt"), "REGSCRIBE_PROMPT_FILE"},
		"empty":   {"", empty, "is empty"},
		"too big": {"", big, "at most"},
	} {
		_, err := vision.LoadPrompt(tc.text, tc.file, "")
		require.ErrorContains(t, err, tc.errHas, name)
		requireOneLine(t, err)
	}
}
