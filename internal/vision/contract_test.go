package vision_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/vision"
)

// describer is what the worker needs of a provider (worker.Describer and
// worker.Checker); both providers must satisfy it.
type describer interface {
	Describe(ctx context.Context, img vision.Image) (vision.Description, error)
	Model() string
	PromptDigest() string
	Accepts() []string
	Check(ctx context.Context) error
}

var (
	_ describer = (*vision.Ollama)(nil)
	_ describer = (*vision.OpenAI)(nil)
)

// setup says how to start a provider against its fake.
type setup struct {
	// model asked for; empty: one the fake has.
	model string
	// answer of the fake; nil: DescribeByDigest.
	answer func(modeltest.Call) modeltest.Reply
	// timeout of one call; zero: 10 s.
	timeout time.Duration
	// down points the provider at a port nobody listens on.
	down bool
}

// backend is a provider with its fake.
type backend struct {
	d        describer
	calls    func() []modeltest.Call
	problems func() []string
}

// provider is one implementation under the contract, with what differs.
type provider struct {
	name string
	// prefix of Model().
	prefix string
	// known is a model its fake has.
	known string
	// unknownModel is what a model the server does not have means: for
	// Ollama unavailable (a deployment problem: `ollama pull` fixes it, jobs
	// wait), for OpenAI permanent (a wrong name; waiting cannot fix it).
	unknownModel fault.Kind
	// unknownHint is what that error must tell a person to do.
	unknownHint string
	// downHint names the setting that points at the server.
	downHint string
	start    func(t *testing.T, s setup) backend
}

// prompt is sent by every provider in the suite: the fakes must see it as is.
var prompt = vision.Prompt{Text: "Describe the photo for a museum catalogue.", Language: "de"}

var providers = []provider{
	{
		name: "ollama", prefix: "ollama/", known: "qwen2.5vl:3b",
		unknownModel: fault.KindUnavailable, unknownHint: "ollama pull no-such-model", downHint: "OLLAMA_HOST",
		start: func(t *testing.T, s setup) backend {
			f := modeltest.NewUnstartedOllama("qwen2.5vl:3b")
			f.Answer = s.answer
			f.Start()
			t.Cleanup(f.Close)
			base := f.URL
			if s.down {
				base = "http://" + deadAddr(t)
			}
			u, err := url.Parse(base)
			require.NoError(t, err)
			o := vision.NewOllama(vision.OllamaOptions{
				BaseURL: u, Model: or(s.model, "qwen2.5vl:3b"), Prompt: prompt, Timeout: or(s.timeout, 10*time.Second),
				KeepAlive: time.Minute, MaxTokens: 300, Temperature: 0.2,
			})
			return backend{d: o, calls: f.Calls, problems: f.Problems}
		},
	},
	{
		name: "openai", prefix: "openai/", known: "gpt-4o-mini",
		unknownModel: fault.KindPermanent, unknownHint: "REGSCRIBE_MODEL", downHint: "OPENAI_BASE_URL",
		start: func(t *testing.T, s setup) backend {
			f := modeltest.NewUnstartedOpenAI("sk-test", "gpt-4o-mini")
			f.Answer = s.answer
			f.Detail = "low"
			f.Start()
			t.Cleanup(f.Close)
			base := f.BaseURL()
			if s.down {
				base = "http://" + deadAddr(t) + "/v1"
			}
			o, err := vision.NewOpenAI(vision.OpenAIOptions{
				BaseURL: base, APIKey: "sk-test", Model: or(s.model, "gpt-4o-mini"), Detail: "low", Prompt: prompt,
				Timeout: or(s.timeout, 10*time.Second), MaxTokens: 300, Temperature: 0.2,
			})
			require.NoError(t, err)
			return backend{d: o, calls: f.Calls, problems: f.Problems}
		},
	},
}

func TestContract(t *testing.T) {
	t.Parallel()
	photo := testJPEG(t)
	cases := []struct {
		name   string
		setup  setup
		img    vision.Image
		kind   fault.Kind
		fails  bool
		errHas []string
		// minAfter is the least delay the error must ask for.
		minAfter time.Duration
		// check looks at a success and what the fake saw.
		check func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call)
	}{
		{
			name: "JSON answer gives its fields",
			setup: setup{answer: func(modeltest.Call) modeltest.Reply {
				return modeltest.JSON("This image shows a red kite above a wheat field.", "Red kite above a field", "Kite", "field", "sky")
			}},
			check: func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call) {
				require.Equal(t, "A red kite above a wheat field.", d.Text)
				require.Equal(t, "Red kite above a field", d.Alt)
				require.Equal(t, []string{"kite", "field", "sky"}, d.Keywords)
				require.Equal(t, p.prefix+p.known, d.Model)
				require.False(t, d.Created.IsZero())
				require.Positive(t, d.Usage.PromptTokens, "token usage is recorded")
				require.Positive(t, d.Usage.OutputTokens)
				require.Positive(t, d.Usage.Latency, "latency is recorded")
			},
		},
		{
			name: "JSON answer gives the visible text",
			setup: setup{answer: func(modeltest.Call) modeltest.Reply {
				return modeltest.JSONText("A slide in a meeting room.", "Slide", "Q3 revenue\nup 12%", "slide")
			}},
			check: func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call) {
				require.Equal(t, "A slide in a meeting room.", d.Text)
				require.Equal(t, "Q3 revenue up 12%", d.VisibleText)
				require.Contains(t, string(calls[0].Format), `"text"`, "the schema asks for the visible text")
			},
		},
		{
			name:  "the fake sees model, prompt, schema, image bytes and media type as sent",
			setup: setup{},
			check: func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call) {
				require.Len(t, calls, 1)
				c := calls[0]
				require.Equal(t, p.known, c.Model)
				require.Equal(t, prompt.String(), c.Prompt)
				require.Contains(t, c.Prompt, "German", "the language is named in the prompt")
				require.JSONEq(t, string(vision.Schema), string(c.Format))
				require.Len(t, c.Images, 1)
				require.Equal(t, photo, c.Images[0])
				require.Equal(t, "image/jpeg", c.MediaType)
				require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", d.Text)
			},
		},
		{
			name:  "PNG goes as PNG",
			setup: setup{},
			img:   vision.Image{Data: testPNG(t), MediaType: "image/png"},
			check: func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call) {
				require.Equal(t, "image/png", calls[0].MediaType)
			},
		},
		{
			name: "prose answer still gives a description, and an alt text from it",
			setup: setup{answer: func(modeltest.Call) modeltest.Reply {
				return modeltest.Prose("**This image shows** a red kite above a wheat field.\n\nThe sky is clear.")
			}},
			check: func(t *testing.T, p provider, d vision.Description, calls []modeltest.Call) {
				require.Equal(t, "A red kite above a wheat field. The sky is clear.", d.Text)
				require.Equal(t, "A red kite above a wheat field.", d.Alt)
				require.Empty(t, d.VisibleText, "prose has no visible text field")
			},
		},
		{
			name:     "429 retries no sooner than Retry-After",
			setup:    setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.RateLimited(2 * time.Second) }},
			fails:    true,
			kind:     fault.KindRetry,
			minAfter: 2 * time.Second,
			errHas:   []string{"Rate limit reached for requests"},
		},
		{
			name:   "500 retries and keeps the server's message",
			setup:  setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.ServerError("runner crashed") }},
			fails:  true,
			kind:   fault.KindRetry,
			errHas: []string{"runner crashed"},
		},
		{
			name:   "bad request is permanent and keeps the server's message",
			setup:  setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.BadRequest("image: unknown format") }},
			fails:  true,
			kind:   fault.KindPermanent,
			errHas: []string{"image: unknown format"},
		},
		{
			name:  "empty answer retries",
			setup: setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.Prose("  \n ") }},
			fails: true,
			kind:  fault.KindRetry,
		},
		{
			name:   "no answer within the timeout retries",
			setup:  setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.Hang() }, timeout: 300 * time.Millisecond},
			fails:  true,
			kind:   fault.KindRetry,
			errHas: []string{"no answer within 300ms", "REGSCRIBE_MODEL_TIMEOUT"},
		},
		{
			// The server took the request and died on it (a photo that
			// crashes the model runner): this request failed, the server
			// was there. Retrying spends an attempt, so such a photo ends
			// as a dead letter instead of pausing every worker for ever.
			name:   "connection reset after the request was sent retries",
			setup:  setup{answer: func(modeltest.Call) modeltest.Reply { return modeltest.Reset() }},
			fails:  true,
			kind:   fault.KindRetry,
			errHas: []string{"reset"},
		},
		{
			name:   "refused connection is unavailable",
			setup:  setup{down: true},
			fails:  true,
			kind:   fault.KindUnavailable,
			errHas: []string{"127.0.0.1"},
		},
	}
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					b := p.start(t, tc.setup)
					img := tc.img
					if img.Data == nil {
						img = vision.Image{Data: photo, MediaType: "image/jpeg"}
					}
					d, err := b.d.Describe(context.Background(), img)
					require.Empty(t, b.problems(), "the fake saw a malformed request")
					if !tc.fails {
						require.NoError(t, err)
						tc.check(t, p, d, b.calls())
						return
					}
					require.Error(t, err)
					kind, after := fault.Classify(err)
					require.Equal(t, tc.kind, kind, "error: %v", err)
					require.GreaterOrEqual(t, after, tc.minAfter)
					for _, s := range tc.errHas {
						require.ErrorContains(t, err, s)
					}
				})
			}
			t.Run("unknown model", func(t *testing.T) {
				t.Parallel()
				b := p.start(t, setup{model: "no-such-model"})
				_, err := b.d.Describe(context.Background(), vision.Image{Data: photo, MediaType: "image/jpeg"})
				require.Error(t, err)
				require.True(t, fault.Is(err, p.unknownModel), "want %v, got %v", p.unknownModel, err)
				require.ErrorContains(t, err, "no-such-model")
				require.ErrorContains(t, err, p.unknownHint)
			})
		})
	}
}

func TestContractCheck(t *testing.T) {
	t.Parallel()
	for _, p := range providers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name   string
				setup  setup
				errHas []string
			}{
				{"ready", setup{}, nil},
				{"unknown model names the fix", setup{model: "no-such-model"}, []string{"no-such-model", p.unknownHint}},
				{"server down names the setting", setup{down: true}, []string{p.downHint}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					b := p.start(t, tc.setup)
					err := b.d.Check(context.Background())
					if tc.errHas == nil {
						require.NoError(t, err)
						return
					}
					require.Error(t, err)
					requireOneLine(t, err)
					for _, s := range tc.errHas {
						require.ErrorContains(t, err, s)
					}
					require.Empty(t, b.problems())
				})
			}
		})
	}
}

func requireOneLine(t *testing.T, err error) {
	t.Helper()
	require.NotContains(t, err.Error(), "\n", "one line per problem")
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func testImage() image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for y := range 16 {
		for x := range 24 {
			img.Set(x, y, color.RGBA{R: uint8(x * 10), G: uint8(y * 15), B: 90, A: 255})
		}
	}
	return img
}

func testJPEG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, testImage(), nil))
	return b.Bytes()
}

func testPNG(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, testImage()))
	return b.Bytes()
}

// lines splits s into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
