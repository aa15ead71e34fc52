package vision

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Image is one image as the model receives it.
type Image struct {
	// Data is the encoded image (JPEG, PNG, ...), sent as it is.
	Data []byte
	// MediaType of Data, e.g. "image/jpeg".
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
	// VisibleText is the text legible in the photo (signs, labels, slides,
	// screenshots), at most [MaxVisibleTextLen] characters; empty when
	// there is none or the model answered in prose.
	VisibleText string `json:"text,omitempty"`
	// Model is provider/model, e.g. "ollama/qwen2.5vl:3b".
	Model string `json:"model"`
	// Created is when the model answered.
	Created time.Time `json:"created"`
	// Usage of the call that produced it (zero when remembered).
	Usage Usage `json:"-"`
}

// Usage is the cost of one model call.
type Usage struct {
	// PromptTokens the model read (prompt and image).
	PromptTokens int
	// OutputTokens the model wrote.
	OutputTokens int
	// Latency from sending the request to having the answer.
	Latency time.Duration
}

// Limits on cleaned text.
const (
	MaxTextLen    = 1000
	MaxAltLen     = 125
	MaxKeywords   = 10
	MaxKeywordLen = 40
	// MaxVisibleTextLen caps the visible text: enough for a slide or a
	// screenshot's words, small enough for an annotation.
	MaxVisibleTextLen = 2000
)

// DefaultPrompt asks for what is visible, without preamble.
const DefaultPrompt = `Describe this photo for a catalogue. Say only what is visible: subjects, setting, colours, light, any legible text. ` +
	`Answer as JSON with "description" (one to three plain sentences, no preamble such as "This image shows"), ` +
	`"alt" (an alt text of at most 125 characters), "keywords" (three to eight lowercase keywords) ` +
	`and "text" (the words legible in the photo, such as signs, labels, slides or screens, as written; "" when there are none).`

// MaxPromptFileBytes caps the size of a prompt file read by [LoadPrompt].
const MaxPromptFileBytes = 64 << 10

// Prompt is the instruction sent with each photo.
type Prompt struct {
	// Text of the prompt. If empty, DefaultPrompt is used.
	Text string
	// Language of the answer as a BCP 47 tag ("de", "pt-BR") or a name
	// ("German"); see [LanguageName]. Empty: no instruction (the prompt's
	// own language, English for the default prompt).
	Language string
}

// LoadPrompt builds the Prompt from configuration: text (REGSCRIBE_PROMPT)
// or the contents of file (REGSCRIBE_PROMPT_FILE), not both; neither gives
// [DefaultPrompt]. language is the answer's language (REGSCRIBE_LANGUAGE).
func LoadPrompt(text, file, language string) (Prompt, error) {
	p := Prompt{Text: strings.TrimSpace(text), Language: strings.TrimSpace(language)}
	if file == "" {
		return p, nil
	}
	if p.Text != "" {
		return Prompt{}, errors.New("REGSCRIBE_PROMPT and REGSCRIBE_PROMPT_FILE are both set: set one of them")
	}
	st, err := os.Stat(file)
	if err != nil {
		return Prompt{}, fmt.Errorf("prompt file (REGSCRIBE_PROMPT_FILE): %w", err)
	}
	if st.Size() > MaxPromptFileBytes {
		return Prompt{}, fmt.Errorf("prompt file %s is %d bytes; at most %d are read (REGSCRIBE_PROMPT_FILE)", file, st.Size(), MaxPromptFileBytes)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return Prompt{}, fmt.Errorf("prompt file (REGSCRIBE_PROMPT_FILE): %w", err)
	}
	p.Text = strings.TrimSpace(string(b))
	if p.Text == "" {
		return Prompt{}, fmt.Errorf("prompt file %s is empty (REGSCRIBE_PROMPT_FILE)", file)
	}
	return p, nil
}

// String is the full prompt as sent.
func (p Prompt) String() string {
	t := strings.TrimSpace(p.Text)
	if t == "" {
		t = DefaultPrompt
	}
	if lang := LanguageName(p.Language); lang != "" {
		t += " Write the description, alt text and keywords in " + lang + "."
	}
	return t
}

// Digest identifies the prompt and answer schema: descriptions are
// remembered per photo, model and prompt digest.
func (p Prompt) Digest() string {
	sum := sha256.Sum256([]byte(p.String() + "\x00" + string(Schema)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// languages names the languages of common BCP 47 primary subtags, in
// English, as the prompt names them to the model.
var languages = map[string]string{
	"ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
	"es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
	"id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nb": "Norwegian", "nl": "Dutch",
	"no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
	"th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}

// regional names the variants that change what a model should write.
var regional = map[string]string{
	"pt-br": "Brazilian Portuguese", "zh-cn": "Simplified Chinese", "zh-hans": "Simplified Chinese",
	"zh-sg": "Simplified Chinese", "zh-tw": "Traditional Chinese", "zh-hk": "Traditional Chinese",
	"zh-hant": "Traditional Chinese",
}

// LanguageName turns a BCP 47 tag into the English name of its language
// ("de" and "de-AT" give "German", "pt-BR" "Brazilian Portuguese"); anything
// else, such as a name ("Deutsch", "Klingon"), is returned as given.
func LanguageName(tag string) string {
	tag = strings.TrimSpace(tag)
	key := strings.ToLower(strings.ReplaceAll(tag, "_", "-"))
	if name, ok := regional[key]; ok {
		return name
	}
	if i := strings.IndexByte(key, '-'); i > 0 && i <= 3 {
		key = key[:i]
	}
	if name, ok := languages[key]; ok {
		return name
	}
	return tag
}

// Schema is the JSON schema of the answer (structured output). It is valid
// for OpenAI's strict mode: every property required, no others allowed.
var Schema = json.RawMessage(`{"type":"object","properties":{` +
	`"description":{"type":"string"},` +
	`"alt":{"type":"string"},` +
	`"keywords":{"type":"array","items":{"type":"string"}},` +
	`"text":{"type":"string"}},` +
	`"required":["description","alt","keywords","text"],"additionalProperties":false}`)
