package modeltest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
)

// Ollama is a fake Ollama server: /api/chat, /api/embed, /api/tags,
// /api/show, /api/pull and /api/version.
type Ollama struct {
	*httptest.Server
	recorder
	embedding

	// Models lists the models the server has ("name:tag"). Set it before
	// the server starts; a pull adds to it.
	Models []string
	// Library lists the models /api/pull can fetch. If nil, any name.
	Library []string
	// Answer decides the reply to each valid chat request. If nil,
	// DescribeByDigest is used.
	Answer func(Call) Reply
	// Latency is added before each chat answer.
	Latency time.Duration
	// Limit, if positive, is how many chat requests are served at once, as
	// a model server with Limit slots (OLLAMA_NUM_PARALLEL) serves them: a
	// request received while every slot is busy waits in line, in arrival
	// order, and its Latency starts when it gets a slot. Set it before the
	// first chat request; later changes are ignored.
	Limit int
	// ForgetImages keeps the calls without their image bytes (a benchmark
	// makes thousands of calls; the answer still sees the images).
	ForgetImages bool

	slots   chan struct{} // the Limit slots, made on the first chat request
	serving atomic.Int32
	maxServ atomic.Int32
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
	mux.HandleFunc("POST /api/embed", f.embed)
	mux.HandleFunc("GET /api/tags", f.tags)
	mux.HandleFunc("POST /api/show", f.show)
	mux.HandleFunc("POST /api/pull", f.pull)
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": "0.17.4"})
	})
	f.Server = httptest.NewUnstartedServer(mux)
	return f
}

// AddModel gives the server more models, safely while it serves.
func (f *Ollama) AddModel(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		if n = normalModel(n); !slices.Contains(f.Models, n) {
			f.Models = append(f.Models, n)
		}
	}
}

func normalModel(name string) string {
	if !strings.Contains(name, ":") {
		name += ":latest"
	}
	return name
}

func (f *Ollama) hasModel(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.Models, normalModel(name))
}

func (f *Ollama) chat(w http.ResponseWriter, r *http.Request) {
	defer f.enter()()
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
	for i, img := range call.Images {
		mt := http.DetectContentType(img)
		if i == 0 {
			call.MediaType = mt
		}
		if mt != "image/jpeg" && mt != "image/png" {
			f.problem("image is %s, neither JPEG nor PNG (Ollama takes those)", mt)
		}
	}
	kept := call
	if f.ForgetImages {
		kept.Images = nil
	}
	f.mu.Lock()
	f.calls = append(f.calls, kept)
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
	release, ok := f.slot(r)
	if !ok {
		return
	}
	defer release()
	if !wait(r, f.Latency) {
		return
	}
	if rep.Reset {
		reset(w, r)
		return
	}
	if rep.Hang {
		<-r.Context().Done()
		return
	}
	copyHeader(w, rep.Header)
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

// slot waits for one of the Limit slots (at once without a Limit) and
// returns its release, or false when the client went away first.
func (f *Ollama) slot(r *http.Request) (release func(), ok bool) {
	f.mu.Lock()
	if f.slots == nil && f.Limit > 0 {
		f.slots = make(chan struct{}, f.Limit)
	}
	slots := f.slots
	f.mu.Unlock()
	if slots != nil {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			return nil, false
		}
	}
	n := f.serving.Add(1)
	for {
		m := f.maxServ.Load()
		if n <= m || f.maxServ.CompareAndSwap(m, n) {
			break
		}
	}
	return func() {
		f.serving.Add(-1)
		if slots != nil {
			<-slots
		}
	}, true
}

// MaxServed is the most chat requests served at once (holding a slot, see
// Limit); [Ollama.MaxConcurrent] counts the ones waiting in line too.
func (f *Ollama) MaxServed() int { return int(f.maxServ.Load()) }

func (f *Ollama) tags(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	models := slices.Clone(f.Models)
	f.mu.Unlock()
	list := api.ListResponse{Models: []api.ListModelResponse{}}
	for _, m := range models {
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

// pull streams progress as Ollama does (newline-delimited JSON, errors in
// the stream after a 200) for a model of two layers, then has the model.
func (f *Ollama) pull(w http.ResponseWriter, r *http.Request) {
	var req api.PullRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	name := normalModel(req.Model)
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	send := func(v any) {
		_ = enc.Encode(v)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	send(api.ProgressResponse{Status: "pulling manifest"})
	if f.Library != nil && !slices.Contains(f.Library, name) {
		send(map[string]string{"error": "pull model manifest: file does not exist"})
		return
	}
	layers := []struct {
		digest string
		size   int64
	}{{Digest([]byte(name + "/weights")), 3 << 20}, {Digest([]byte(name + "/projector")), 1 << 20}}
	for _, l := range layers {
		for done := int64(0); done <= l.size; done += l.size / 4 {
			status := "pulling " + l.digest[7:19]
			send(api.ProgressResponse{Status: status, Digest: l.digest, Total: l.size, Completed: done})
		}
	}
	for _, s := range []string{"verifying sha256 digest", "writing manifest", "success"} {
		send(api.ProgressResponse{Status: s})
	}
	f.AddModel(name)
}
