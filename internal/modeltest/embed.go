package modeltest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/ollama/ollama/api"
	openai "github.com/sashabaranov/go-openai"
)

// DefaultEmbedDims is the size of the fakes' vectors unless EmbedDims says.
const DefaultEmbedDims = 256

// synonyms map words to the word whose dimension they share, so that a
// text with "automobile" lands near one with "car": what a real embedding
// model does for meaning, made deterministic.
var synonyms = map[string]string{
	"automobile": "car", "auto": "car", "vehicle": "car", "sedan": "car",
	"puppy": "dog", "hound": "dog", "doggy": "dog",
	"kitten": "cat", "kitty": "cat",
	"bike": "bicycle", "cycle": "bicycle",
	"ship": "boat", "vessel": "boat", "sailboat": "boat",
	"ocean": "sea", "street": "road", "kid": "child", "couch": "sofa",
	"photo": "picture", "image": "picture", "photograph": "picture",
	"lift": "forklift", "forklifts": "forklift", "pallet": "crate",
}

// stopwords carry no meaning in the fakes' vectors.
var stopwords = map[string]bool{
	"a": true, "an": true, "the": true, "of": true, "in": true, "on": true, "at": true, "and": true,
	"with": true, "is": true, "are": true, "to": true, "by": true, "for": true, "this": true, "its": true,
}

// EmbedVector is the fakes' deterministic embedding of text in dims
// dimensions: each meaningful word (lower case, plural "s" dropped, mapped
// through a small table of synonyms) adds one to a dimension picked by its
// hash; the vector is normalised. Texts sharing words or synonyms are
// similar; texts sharing none are (up to hash collisions) orthogonal.
func EmbedVector(text string, dims int) []float32 {
	v := make([]float32, dims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if stopwords[w] {
			continue
		}
		if s, ok := synonyms[w]; ok {
			w = s
		} else if len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = strings.TrimSuffix(w, "s")
			if s, ok := synonyms[w]; ok {
				w = s
			}
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(w))
		v[h.Sum32()%uint32(dims)]++
	}
	var sum float64
	for _, x := range v {
		sum += float64(x * x)
	}
	if sum > 0 {
		inv := float32(1 / math.Sqrt(sum))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

// EmbedCall is one embedding request a fake received.
type EmbedCall struct {
	Model  string
	Inputs []string
}

// embedding is the embedding endpoint's state, shared by both fakes.
type embedding struct {
	// EmbedDims is the size of the vectors. If zero, DefaultEmbedDims.
	// Set it before the first request.
	EmbedDims int
	// EmbedLatency is added before each embedding answer.
	EmbedLatency time.Duration

	down   atomic.Bool
	emu    sync.Mutex
	embeds []EmbedCall
}

// SetEmbedDown makes the embedding endpoint answer 503 (true) or work
// again (false), as an embedding model that is down does.
func (e *embedding) SetEmbedDown(down bool) { e.down.Store(down) }

// EmbedCalls returns the embedding requests received so far.
func (e *embedding) EmbedCalls() []EmbedCall {
	e.emu.Lock()
	defer e.emu.Unlock()
	return append([]EmbedCall(nil), e.embeds...)
}

// EmbeddedTexts is how many texts the embedding requests so far held.
func (e *embedding) EmbeddedTexts() int {
	n := 0
	for _, c := range e.EmbedCalls() {
		n += len(c.Inputs)
	}
	return n
}

func (e *embedding) dims() int {
	if e.EmbedDims > 0 {
		return e.EmbedDims
	}
	return DefaultEmbedDims
}

// inputs reads an input field: a string or a list of strings.
func inputs(v any) ([]string, error) {
	switch in := v.(type) {
	case string:
		return []string{in}, nil
	case []any:
		out := make([]string, 0, len(in))
		for _, x := range in {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("input holds a %T, not text", x)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("input is a %T, want text or a list of texts", v)
}

// embedRequest checks an embedding request's inputs and records it; a
// non-empty reason is what a real server would answer 400 with.
func (e *embedding) embedRequest(r *recorder, model string, input any) ([]string, string) {
	texts, err := inputs(input)
	switch {
	case err != nil:
		r.problem("embed: %v", err)
		return nil, err.Error()
	case len(texts) == 0:
		r.problem("embed: no input")
		return nil, "input is empty"
	}
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			r.problem("embed: input %d is empty", i)
			return nil, fmt.Sprintf("input %d is empty", i)
		}
	}
	e.emu.Lock()
	e.embeds = append(e.embeds, EmbedCall{Model: model, Inputs: texts})
	e.emu.Unlock()
	return texts, ""
}

// embed serves POST /api/embed.
func (f *Ollama) embed(w http.ResponseWriter, r *http.Request) {
	var req api.EmbedRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.problem("embed body: %v", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if !f.hasModel(req.Model) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q not found, try pulling it first", req.Model)})
		return
	}
	texts, bad := f.embedRequest(&f.recorder, req.Model, req.Input)
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": bad})
		return
	}
	if !wait(r, f.EmbedLatency) {
		return
	}
	if f.down.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "embedding model is down"})
		return
	}
	resp := api.EmbedResponse{Model: req.Model, Embeddings: make([][]float32, len(texts)), PromptEvalCount: len(texts)}
	for i, t := range texts {
		resp.Embeddings[i] = EmbedVector(t, f.dims())
	}
	writeJSON(w, http.StatusOK, resp)
}

// embeddings serves POST /v1/embeddings.
func (f *OpenAI) embeddings(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, false) {
		return
	}
	var req openai.EmbeddingRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.problem("embeddings body: %v", err)
		apiError(w, http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error(), "invalid_request_error", "")
		return
	}
	if !f.hasModel(string(req.Model)) {
		apiError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist", req.Model), "invalid_request_error", "model_not_found")
		return
	}
	texts, bad := f.embedRequest(&f.recorder, string(req.Model), req.Input)
	if bad != "" {
		apiError(w, http.StatusBadRequest, bad, "invalid_request_error", "")
		return
	}
	if !wait(r, f.EmbedLatency) {
		return
	}
	if f.down.Load() {
		apiError(w, http.StatusServiceUnavailable, "The server is overloaded or not ready yet.", "server_error", "")
		return
	}
	data := make([]map[string]any, len(texts))
	for i, t := range texts {
		vec := EmbedVector(t, f.dims())
		var enc any = vec
		if req.EncodingFormat == openai.EmbeddingEncodingFormatBase64 {
			b := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			enc = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "embedding": enc, "index": i}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": 8 * len(texts), "total_tokens": 8 * len(texts)},
	})
}
