package modeltest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Reply is what the fake answers to one chat request.
type Reply struct {
	// Status is the HTTP status. If zero, 200.
	Status int
	// Content is the model's message (for 200) or the error text (otherwise).
	Content string
	// Hang makes the fake never answer (until the client gives up).
	Hang bool
}

// Call is one chat request the fake received.
type Call struct {
	Model  string
	Prompt string
	// Images are the image bytes as received (decoded from base64).
	Images [][]byte
	Format json.RawMessage
}

// Ollama is a fake Ollama server: /api/chat, /api/tags, /api/show, /api/version.
type Ollama struct {
	*httptest.Server

	// Models lists the models the server has ("name:tag").
	Models []string
	// Answer decides the reply to each valid chat request. If nil,
	// DescribeByDigest is used.
	Answer func(Call) Reply
	// Latency is added before each chat answer.
	Latency time.Duration

	mu       sync.Mutex
	calls    []Call
	problems []string
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

// NewOllama starts a fake Ollama server that has the given models.
func NewOllama(models ...string) *Ollama {
	f := NewUnstartedOllama(models...)
	f.Start()
	return f
}

// NewUnstartedOllama returns a fake Ollama server that is not started yet:
// set its Listener to serve on a chosen address, then call Start.
func NewUnstartedOllama(models ...string) *Ollama {
	f := &Ollama{Models: models}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", f.chat)
	mux.HandleFunc("GET /api/tags", f.tags)
	mux.HandleFunc("POST /api/show", f.show)
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": "0.17.4"})
	})
	f.Server = httptest.NewUnstartedServer(mux)
	return f
}

// DescribeByDigest answers with a JSON description naming the first image's
// digest, so a test can tell which photo a description belongs to.
func DescribeByDigest(c Call) Reply {
	d := Digest(c.Images[0])
	b, _ := json.Marshal(map[string]any{
		"description": "This image shows a test photo " + d[:19] + ".",
		"alt":         "Test photo " + d[7:19],
		"keywords":    []string{"test", "photo"},
	})
	return Reply{Content: string(b)}
}

// Digest is the sha256 digest of b, as in OCI descriptors.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Calls returns the chat requests received so far.
func (f *Ollama) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Problems lists protocol violations seen in requests (empty when all were right).
func (f *Ollama) Problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.problems...)
}

// MaxConcurrent is the most chat requests seen in flight at once.
func (f *Ollama) MaxConcurrent() int { return int(f.maxSeen.Load()) }

func (f *Ollama) problem(format string, args ...any) {
	f.mu.Lock()
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *Ollama) hasModel(name string) bool {
	if !strings.Contains(name, ":") {
		name += ":latest"
	}
	for _, m := range f.Models {
		if m == name {
			return true
		}
	}
	return false
}

func (f *Ollama) chat(w http.ResponseWriter, r *http.Request) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	var req api.ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.problem("chat body: %v", err)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if !f.hasModel(req.Model) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q not found, try pulling it first", req.Model)})
		return
	}
	call := Call{Model: req.Model, Format: req.Format}
	switch {
	case len(req.Messages) != 1:
		f.problem("want 1 message, got %d", len(req.Messages))
	case req.Messages[0].Role != "user":
		f.problem("message role %q", req.Messages[0].Role)
	default:
		call.Prompt = req.Messages[0].Content
		for _, img := range req.Messages[0].Images {
			call.Images = append(call.Images, img)
		}
	}
	if len(call.Images) != 1 {
		f.problem("want 1 image, got %d", len(call.Images))
	}
	if call.Prompt == "" {
		f.problem("empty prompt")
	}
	if req.Stream == nil || *req.Stream {
		f.problem("streaming requested; regscribe asks for one answer")
	}
	if len(req.Format) == 0 {
		f.problem("no format (JSON schema) in request")
	}
	for _, img := range call.Images {
		if !isJPEGOrPNG(img) {
			f.problem("image is neither JPEG nor PNG (Ollama takes those)")
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	answer := f.Answer
	f.mu.Unlock()
	if len(call.Images) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "no image"})
		return
	}
	if answer == nil {
		answer = DescribeByDigest
	}
	rep := answer(call)
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		}
	}
	if rep.Hang {
		<-r.Context().Done()
		return
	}
	if rep.Status != 0 && rep.Status != http.StatusOK {
		writeJSON(w, rep.Status, map[string]string{"error": rep.Content})
		return
	}
	writeJSON(w, http.StatusOK, api.ChatResponse{
		Model:      req.Model,
		CreatedAt:  time.Now().UTC(),
		Message:    api.Message{Role: "assistant", Content: rep.Content},
		Done:       true,
		DoneReason: "stop",
		Metrics:    api.Metrics{PromptEvalCount: 600, EvalCount: 42, TotalDuration: f.Latency},
	})
}

func (f *Ollama) tags(w http.ResponseWriter, _ *http.Request) {
	var list api.ListResponse
	for _, m := range f.Models {
		list.Models = append(list.Models, api.ListModelResponse{Name: m, Model: m, ModifiedAt: time.Now().UTC(), Size: 3 << 30})
	}
	writeJSON(w, http.StatusOK, list)
}

func (f *Ollama) show(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if !f.hasModel(req.Model) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model '%s' not found", req.Model)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"details":      map[string]any{"family": "qwen25vl", "parameter_size": "3.8B"},
		"capabilities": []string{"completion", "vision"},
	})
}

func isJPEGOrPNG(b []byte) bool {
	return len(b) > 8 && (b[0] == 0xFF && b[1] == 0xD8 || string(b[1:4]) == "PNG")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
