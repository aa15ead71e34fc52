package vision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Image is one image as the model receives it.
type Image struct {
	Data      []byte
	MediaType string
}

// Description is what a model said about one photo, cleaned.
type Description struct {
	// Text is one to three sentences of what is visible.
	Text string `json:"description"`
	// Alt is a short alt text (at most [MaxAltLen] characters).
	Alt string `json:"alt,omitempty"`
	// Keywords are a few single words or short phrases.
	Keywords []string `json:"keywords,omitempty"`
	// Model is provider/model, e.g. "ollama/qwen2.5vl:3b".
	Model string `json:"model"`
	// Created is when the model answered.
	Created time.Time `json:"created"`
	// Usage of the call that produced it (zero when remembered).
	Usage Usage `json:"-"`
}

// Usage is the cost of one model call.
type Usage struct {
	PromptTokens int
	OutputTokens int
	Latency      time.Duration
}

// Limits on cleaned text.
const (
	MaxTextLen    = 1000
	MaxAltLen     = 125
	MaxKeywords   = 10
	MaxKeywordLen = 40
)

// DefaultPrompt asks for what is visible, without preamble.
const DefaultPrompt = `Describe this photo for a catalogue. Say only what is visible: subjects, setting, colours, light, any legible text. ` +
	`Answer as JSON with "description" (one to three plain sentences, no preamble such as "This image shows"), ` +
	`"alt" (an alt text of at most 125 characters) and "keywords" (three to eight lowercase keywords).`

// Prompt is the instruction sent with each photo.
type Prompt struct {
	// Text of the prompt. If empty, DefaultPrompt is used.
	Text string
	// Language of the answer as a name or BCP 47 tag ("de", "French"). Empty: English.
	Language string
}

// String is the full prompt as sent.
func (p Prompt) String() string {
	t := strings.TrimSpace(p.Text)
	if t == "" {
		t = DefaultPrompt
	}
	if p.Language != "" {
		t += " Write the description, alt text and keywords in the language " + p.Language + "."
	}
	return t
}

// Digest identifies the prompt and answer schema: descriptions are
// remembered per photo, model and prompt digest.
func (p Prompt) Digest() string {
	sum := sha256.Sum256([]byte(p.String() + "\x00" + string(Schema)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Schema is the JSON schema of the answer (structured output).
var Schema = json.RawMessage(`{"type":"object","properties":{` +
	`"description":{"type":"string"},` +
	`"alt":{"type":"string"},` +
	`"keywords":{"type":"array","items":{"type":"string"}}},` +
	`"required":["description","alt","keywords"],"additionalProperties":false}`)

// ParseAnswer turns a model's answer into a Description: JSON following
// Schema when the model kept to it, else the prose as the description.
func ParseAnswer(answer string) (Description, error) {
	var d Description
	s := strings.TrimSpace(answer)
	s = stripCodeFence(s)
	if strings.HasPrefix(s, "{") {
		var a struct {
			Description string          `json:"description"`
			Alt         string          `json:"alt"`
			Keywords    json.RawMessage `json:"keywords"`
		}
		if err := json.Unmarshal([]byte(s), &a); err == nil && strings.TrimSpace(a.Description) != "" {
			d.Text = CleanText(a.Description, MaxTextLen)
			d.Alt = CleanText(a.Alt, MaxAltLen)
			d.Keywords = cleanKeywords(a.Keywords)
		}
	}
	if d.Text == "" {
		d.Text = CleanText(s, MaxTextLen)
	}
	if d.Text == "" {
		return d, fmt.Errorf("model answered with no usable text: %q", truncate(answer, 200))
	}
	if d.Alt == "" {
		d.Alt = CleanText(firstSentence(d.Text), MaxAltLen)
	}
	return d, nil
}

var (
	preamble = regexp.MustCompile(`(?i)^(?:(?:this|the)\s+(?:image|photo|photograph|picture|shot)\s+(?:shows|depicts|features|displays|captures|contains|is of|presents)|(?:in|on)\s+(?:this|the)\s+(?:image|photo|photograph|picture)\s*,?|here\s+(?:is|we see)|the\s+(?:image|photo)\s+is\s+of)\s*:?\s*`)
	markdown = regexp.MustCompile("(\\*\\*|__|`|^#+\\s*|^\\s*[-*]\\s+)")
	spaces   = regexp.MustCompile(`\s+`)
)

// CleanText makes model text safe and tidy for an annotation: control
// characters and markdown removed, whitespace folded, a leading "This image
// shows"-style preamble and surrounding quotes trimmed, the first letter
// capitalised and the length capped at max runes (cut at a word).
func CleanText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case unicode.IsControl(r) || r == utf8.RuneError:
			return -1
		}
		return r
	}, s)
	s = markdown.ReplaceAllString(s, "")
	s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
	s = strings.Trim(s, "\"'“”‘’")
	if loc := preamble.FindStringIndex(s); loc != nil {
		s = s[loc[1]:]
		s = strings.TrimPrefix(strings.TrimSpace(s), "that ")
		s = capitalise(s)
	}
	s = strings.TrimSpace(strings.Trim(s, "\"'“”‘’"))
	return truncate(s, max)
}

func cleanKeywords(raw json.RawMessage) []string {
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var joined string
		if json.Unmarshal(raw, &joined) != nil {
			return nil
		}
		list = strings.Split(joined, ",")
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range list {
		k = strings.ToLower(CleanText(k, MaxKeywordLen))
		k = strings.TrimRight(strings.ReplaceAll(k, ",", " "), ".")
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
		if len(out) == MaxKeywords {
			break
		}
	}
	return out
}

func stripCodeFence(s string) string {
	if !strings.HasPrefix(s, "```") {
		return s
	}
	s = strings.TrimPrefix(s, "```")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "```"))
}

func firstSentence(s string) string {
	if i := strings.IndexAny(s, ".!?"); i > 0 {
		return s[:i+1]
	}
	return s
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// truncate caps s at max runes, cutting at the last space when there is one
// in the last fifth, and adds an ellipsis when it cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-1]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)*4/5 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + "…"
}
