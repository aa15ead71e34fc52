package modeltest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Reply is what a fake answers to one chat request.
type Reply struct {
	// Status is the HTTP status. If zero, 200.
	Status int
	// Content is the model's message (for 200) or the error text (otherwise).
	Content string
	// Header holds extra response headers, e.g. Retry-After.
	Header http.Header
	// Code is the error code in an OpenAI error body, e.g.
	// "insufficient_quota" (the Ollama fake has none).
	Code string
	// Refusal is the message's refusal, as OpenAI reports a request the
	// model declined under structured outputs (OpenAI only).
	Refusal string
	// FinishReason of the choice, e.g. "length" or "content_filter". If
	// empty, "stop" (OpenAI only).
	FinishReason string
	// Hang makes the fake never answer (until the client gives up).
	Hang bool
	// Reset makes the fake read the whole request and then drop the
	// connection with a TCP reset, as a model server that crashes on the
	// request does.
	Reset bool
}

// Call is one chat request a fake received.
type Call struct {
	Model  string
	Prompt string
	// Images are the image bytes as received (decoded from base64).
	Images [][]byte
	// MediaType of the first image: as declared in its data: URL (OpenAI),
	// or as sniffed from its bytes (Ollama, whose API sends bytes only).
	MediaType string
	// Detail asked for the first image (OpenAI only).
	Detail string
	// Format is the JSON schema the answer was asked to follow (Ollama's
	// format, OpenAI's response_format json_schema.schema); empty if none.
	Format json.RawMessage
}

// JSON is a 200 reply whose content is the answer as the schema asks for it.
func JSON(description, alt string, keywords ...string) Reply {
	b, _ := json.Marshal(map[string]any{"description": description, "alt": alt, "keywords": keywords})
	return Reply{Content: string(b)}
}

// JSONText is a 200 reply like [JSON] that also gives the text visible in
// the photo (the schema's "text").
func JSONText(description, alt, text string, keywords ...string) Reply {
	b, _ := json.Marshal(map[string]any{"description": description, "alt": alt, "keywords": keywords, "text": text})
	return Reply{Content: string(b)}
}

// Prose is a 200 reply whose content is free text, as models that ignore
// the schema write.
func Prose(text string) Reply { return Reply{Content: text} }

// RateLimited is a 429 reply asking the client to wait retryAfter, with the
// rate-limit headers OpenAI sends (x-ratelimit-reset-requests half of it).
func RateLimited(retryAfter time.Duration) Reply {
	h := http.Header{}
	h.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	h.Set("X-Ratelimit-Limit-Requests", "60")
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", (retryAfter / 2).String())
	return Reply{Status: http.StatusTooManyRequests, Content: "Rate limit reached for requests", Header: h}
}

// ServerError is a 500 reply with message.
func ServerError(message string) Reply {
	return Reply{Status: http.StatusInternalServerError, Content: message}
}

// BadRequest is a 400 reply with message.
func BadRequest(message string) Reply { return Reply{Status: http.StatusBadRequest, Content: message} }

// Hang is a reply that never comes.
func Hang() Reply { return Reply{Hang: true} }

// Reset is no reply: the connection is reset once the request was read.
func Reset() Reply { return Reply{Reset: true} }

// reset reads the rest of r's body and drops the connection with a TCP
// reset (SO_LINGER 0, then close), so the client, which has sent its whole
// request, sees "connection reset by peer".
func reset(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// DescribeByDigest answers with a JSON description naming the first image's
// digest, so a test can tell which photo a description belongs to.
func DescribeByDigest(c Call) Reply {
	d := Digest(c.Images[0])
	return JSON("This image shows a test photo "+d[:19]+".", "Test photo "+d[7:19], "test", "photo")
}

// Digest is the sha256 digest of b, as in OCI descriptors.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// recorder keeps what a fake saw: calls, protocol problems, concurrency.
type recorder struct {
	mu       sync.Mutex
	calls    []Call
	problems []string
	inFlight atomic.Int32
	maxSeen  atomic.Int32
}

// Calls returns the chat requests received so far.
func (r *recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Problems lists protocol violations seen in requests (empty when all were right).
func (r *recorder) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}

// MaxConcurrent is the most chat requests seen in flight at once.
func (r *recorder) MaxConcurrent() int { return int(r.maxSeen.Load()) }

func (r *recorder) problem(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// enter counts a chat request in flight; call the returned func when it ends.
func (r *recorder) enter() (leave func()) {
	n := r.inFlight.Add(1)
	for {
		m := r.maxSeen.Load()
		if n <= m || r.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { r.inFlight.Add(-1) }
}

// wait sleeps latency, or returns false when the client went away first.
func wait(r *http.Request, latency time.Duration) bool {
	if latency <= 0 {
		return true
	}
	select {
	case <-time.After(latency):
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func copyHeader(w http.ResponseWriter, h http.Header) {
	for k, vs := range h {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
}
