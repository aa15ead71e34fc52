package vision_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/vision"
)

func newOllama(t *testing.T, f *modeltest.Ollama, model string) *vision.Ollama {
	t.Helper()
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	return vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: model, Timeout: 10 * time.Second})
}

func TestOllamaPull(t *testing.T) {
	t.Parallel()
	f := modeltest.NewOllama()
	t.Cleanup(f.Close)
	o := newOllama(t, f, "qwen2.5vl:3b")
	err := o.Check(context.Background())
	require.ErrorContains(t, err, "REGSCRIBE_PULL=true")

	var progress bytes.Buffer
	require.NoError(t, o.Pull(context.Background(), &progress))
	out := progress.String()
	require.Contains(t, out, "pulling manifest")
	weights, projector := modeltest.Digest([]byte("qwen2.5vl:3b/weights")), modeltest.Digest([]byte("qwen2.5vl:3b/projector"))
	require.Contains(t, out, "pulling "+weights[7:19], "one bar per layer, named as Ollama names it")
	require.Contains(t, out, "3.1/3.1 MB", "the bar counts bytes")
	require.Contains(t, out, "pulling "+projector[7:19])
	require.Contains(t, out, "1.0/1.0 MB")
	require.Contains(t, out, "success")
	require.NoError(t, o.Check(context.Background()), "the model is there after the pull")
}

func TestOllamaPullFailures(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOllama()
	f.Library = []string{"qwen2.5vl:3b"}
	f.Start()
	t.Cleanup(f.Close)

	err := newOllama(t, f, "qwen9vl:1b").Pull(context.Background(), nil)
	require.True(t, fault.Is(err, fault.KindPermanent), "got %v", err)
	require.ErrorContains(t, err, "file does not exist")
	require.ErrorContains(t, err, "REGSCRIBE_MODEL")
	requireOneLine(t, err)

	u, err := url.Parse("http://" + deadAddr(t))
	require.NoError(t, err)
	err = vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b"}).Pull(context.Background(), nil)
	require.True(t, fault.Is(err, fault.KindUnavailable), "got %v", err)
	require.ErrorContains(t, err, "OLLAMA_HOST")
	requireOneLine(t, err)
}

func TestOllamaKeepsTheCallersHTTPClient(t *testing.T) {
	t.Parallel()
	f := modeltest.NewUnstartedOllama("qwen2.5vl:3b")
	f.Answer = func(modeltest.Call) modeltest.Reply {
		return modeltest.Reply{Status: http.StatusServiceUnavailable, Content: "server busy, please try again. maximum pending requests exceeded", Header: http.Header{"Retry-After": {"7"}}}
	}
	f.Start()
	t.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(t, err)
	counting := &countingTransport{next: http.DefaultTransport}
	hc := &http.Client{Transport: counting}
	o := vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b", HTTPClient: hc})
	_, err = o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
	kind, after := fault.Classify(err)
	require.Equal(t, fault.KindRetry, kind)
	require.Equal(t, 7*time.Second, after, "Retry-After is read through the caller's transport")
	require.Equal(t, 1, counting.n, "the caller's transport carried the request")
	require.Equal(t, counting, hc.Transport, "the caller's client is not modified")
}

type countingTransport struct {
	next http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.next.RoundTrip(r)
}

// TestOllamaDescribeAllocatesForTheAnswerOnly checks that a call allocates
// in proportion to what it sends and reads: the ollama client's Chat
// allocated (and cleared) an 8 MB line buffer for every call.
func TestOllamaDescribeAllocatesForTheAnswerOnly(t *testing.T) {
	f := modeltest.NewOllama("qwen2.5vl:3b")
	t.Cleanup(f.Close)
	o := newOllama(t, f, "qwen2.5vl:3b")
	img := vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"}
	_, err := o.Describe(context.Background(), img) // connection and schema set up
	require.NoError(t, err)
	const calls = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		_, err := o.Describe(context.Background(), img)
		require.NoError(t, err)
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / calls
	require.Less(t, perCall, uint64(1<<20), "bytes allocated per call, the fake server's included (photo: %d bytes)", len(img.Data))
}

// TestOllamaReadsEveryAnswerShape checks the answers an Ollama server (or
// a proxy in front of it) may give to a chat request: a stream of
// newline-delimited parts, an error inside a 200 answer, an error page
// that is no JSON, and a request to sign in.
func TestOllamaReadsEveryAnswerShape(t *testing.T) {
	t.Parallel()
	answer := `{"description":"A red kite above a field.","alt":"Kite","keywords":["kite"]}`
	cases := []struct {
		name   string
		status int
		body   string
		kind   fault.Kind
		errHas string
	}{
		{name: "stream of parts", status: http.StatusOK,
			body: `{"message":{"role":"assistant","content":` + strconv.Quote(answer[:20]) + `},"done":false}` + "\n" +
				`{"message":{"role":"assistant","content":` + strconv.Quote(answer[20:]) + `},"done":true,"done_reason":"stop","prompt_eval_count":600,"eval_count":42}` + "\n"},
		{name: "error in a 200 answer", status: http.StatusOK, body: `{"error":"model runner crashed"}`, kind: fault.KindRetry, errHas: "model runner crashed"},
		{name: "proxy error page", status: http.StatusBadGateway, body: "<html>bad gateway</html>\n<body>…</body>", kind: fault.KindRetry, errHas: "<html>bad gateway</html>"},
		{name: "sign in", status: http.StatusUnauthorized, body: `{"error":"unauthorized","signin_url":"https://ollama.com/connect"}`, kind: fault.KindPermanent, errHas: "ollama signin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.Equal(t, "/api/chat", r.URL.Path)
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(c.status)
				_, _ = io.WriteString(w, c.body)
			}))
			t.Cleanup(srv.Close)
			u, err := url.Parse(srv.URL)
			require.NoError(t, err)
			o := vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b"})
			d, err := o.Describe(context.Background(), vision.Image{Data: testJPEG(t), MediaType: "image/jpeg"})
			if c.errHas == "" {
				require.NoError(t, err)
				require.Equal(t, "A red kite above a field.", d.Text)
				require.Equal(t, 600, d.Usage.PromptTokens)
				require.Equal(t, 42, d.Usage.OutputTokens)
				return
			}
			require.True(t, fault.Is(err, c.kind), "got %v", err)
			require.ErrorContains(t, err, c.errHas)
			requireOneLine(t, err)
		})
	}
}

// BenchmarkOllamaDescribe is one call against the fake over HTTP; see
// -benchmem for what it allocates.
func BenchmarkOllamaDescribe(b *testing.B) {
	f := modeltest.NewOllama("qwen2.5vl:3b")
	b.Cleanup(f.Close)
	u, err := url.Parse(f.URL)
	require.NoError(b, err)
	o := vision.NewOllama(vision.OllamaOptions{BaseURL: u, Model: "qwen2.5vl:3b"})
	img := vision.Image{Data: testJPEG(b), MediaType: "image/jpeg"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Describe(context.Background(), img); err != nil {
			b.Fatal(err)
		}
	}
}
