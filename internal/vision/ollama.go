package vision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
	"github.com/schollz/progressbar/v3"

	"github.com/regscribe/regscribe/internal/fault"
)

// OllamaOptions configure [NewOllama].
type OllamaOptions struct {
	// BaseURL of the Ollama server, e.g. http://localhost:11434.
	BaseURL *url.URL
	// Model to use, e.g. "qwen2.5vl:3b".
	Model string
	// Prompt sent with each photo.
	Prompt Prompt
	// Timeout of one call. If zero, 2 minutes (ollama#8274: some requests
	// on large photos never return).
	Timeout time.Duration
	// KeepAlive keeps the model loaded between calls. Zero leaves Ollama's default.
	KeepAlive time.Duration
	// MaxTokens caps the answer (num_predict). Zero leaves the model's default.
	MaxTokens int
	// Temperature of sampling.
	Temperature float64
	// HTTPClient carries the requests. If nil, a client without an overall
	// timeout is used (the per-call context bounds each call). Its transport
	// is wrapped to read response headers (Retry-After); the client itself is
	// not modified.
	HTTPClient *http.Client
}

// Ollama describes photos with a model served by Ollama, through its native
// API (/api/chat, non-streaming, with the image as bytes, the answer's JSON
// schema as format, keep_alive and the temperature and num_predict options).
//
// Failures are classified with package fault:
//
//   - a server that is not there before the request is sent (the name does
//     not resolve, the connection is refused or cannot be made in time):
//     unavailable;
//   - a connection reset, closed or broken after the request was sent: retry.
//     The server was there and failed on this request (a photo that crashes
//     the model runner), so the attempt is spent;
//   - a model the server does not have (404 "model … not found"):
//     unavailable too, with the `ollama pull` command that fixes it. A
//     missing model is a deployment problem, not a problem of the photo:
//     jobs wait in the queue for it rather than being given up;
//   - no answer within Timeout, 429 and 5xx: retry (after the server's
//     Retry-After, when a proxy in front of Ollama sends one);
//   - other 4xx (401 too): permanent, with the server's message;
//   - an answer without usable text: retry.
type Ollama struct {
	client *api.Client
	http   *http.Client
	opts   OllamaOptions
	// host is BaseURL as errors name it: without its password.
	host string
	// signed is set when the ollama client signs its requests with this
	// machine's Ollama key (for ollama.com, or with OLLAMA_AUTH, which the
	// client reads itself): chat calls then go through it.
	signed bool
}

// NewOllama returns an Ollama provider.
func NewOllama(opts OllamaOptions) *Ollama {
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	hc := recordingClient(opts.HTTPClient)
	return &Ollama{
		client: api.NewClient(opts.BaseURL, hc), http: hc, opts: opts, host: opts.BaseURL.Redacted(),
		signed: envconfig.UseAuth() || opts.BaseURL.Hostname() == "ollama.com",
	}
}

// Model is "ollama/<model>", as written into io.regscribe.model.
func (o *Ollama) Model() string { return "ollama/" + o.opts.Model }

// PromptDigest identifies the prompt and schema in use.
func (o *Ollama) PromptDigest() string { return o.opts.Prompt.Digest() }

// Accepts lists the image media types Ollama takes as they are.
func (o *Ollama) Accepts() []string { return []string{"image/jpeg", "image/png"} }

// Describe asks the model about one image.
func (o *Ollama) Describe(ctx context.Context, img Image) (Description, error) {
	ctx, cancel := context.WithTimeout(ctx, o.opts.Timeout)
	defer cancel()
	ctx, meta := withResponseMeta(ctx)
	stream := false
	req := &api.ChatRequest{
		Model:    o.opts.Model,
		Messages: []api.Message{{Role: "user", Content: o.opts.Prompt.String(), Images: []api.ImageData{img.Data}}},
		Stream:   &stream,
		Format:   Schema,
		Options:  map[string]any{"temperature": o.opts.Temperature},
	}
	if o.opts.MaxTokens > 0 {
		req.Options["num_predict"] = o.opts.MaxTokens
	}
	if o.opts.KeepAlive > 0 {
		req.KeepAlive = &api.Duration{Duration: o.opts.KeepAlive}
	}
	start := time.Now()
	resp, err := o.chat(ctx, req)
	if err != nil {
		return Description{}, o.classify(ctx, err, meta.Header())
	}
	d, err := ParseAnswer(resp.Message.Content)
	if err != nil {
		return Description{}, fault.Retry(fmt.Errorf("ollama %s: %w", o.opts.Model, err))
	}
	d.Model = o.Model()
	d.Created = time.Now().UTC().Truncate(time.Second)
	d.Usage = Usage{PromptTokens: resp.PromptEvalCount, OutputTokens: resp.EvalCount, Latency: time.Since(start)}
	return d, nil
}

// maxAnswerBytes caps an answer read from /api/chat (the ollama client's
// own limit for one line of its stream).
const maxAnswerBytes = 8 << 20

// chat sends req to /api/chat and reads the answer: one JSON object, or
// newline-delimited ones (a stream) whose contents are joined. Errors are
// the ollama client's ([api.StatusError], [api.AuthorizationError], an
// error the server put in the answer). It does what the client's Chat
// does, without the 8 MB line buffer that allocates and clears for every
// call (a quarter of a worker's CPU time on 1 MP photos), except for
// signed requests, which only the client can make.
func (o *Ollama) chat(ctx context.Context, req *api.ChatRequest) (api.ChatResponse, error) {
	var resp api.ChatResponse
	if o.signed {
		err := o.client.Chat(ctx, req, func(r api.ChatResponse) error {
			resp.Message.Content += r.Message.Content
			if r.Done {
				resp.Metrics, resp.DoneReason = r.Metrics, r.DoneReason
			}
			return nil
		})
		return resp, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.opts.BaseURL.JoinPath("/api/chat").String(), bytes.NewReader(body))
	if err != nil {
		return resp, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json, application/x-ndjson")
	hresp, err := o.http.Do(hreq)
	if err != nil {
		return resp, err
	}
	defer hresp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, maxAnswerBytes))
	if err != nil {
		return resp, fmt.Errorf("read the answer: %w", err)
	}
	if hresp.StatusCode >= http.StatusBadRequest {
		return resp, statusError(hresp, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var part struct {
			api.ChatResponse
			Error string `json:"error"`
		}
		switch err := dec.Decode(&part); {
		case err == io.EOF:
			return resp, nil
		case err != nil:
			return resp, fmt.Errorf("read the answer: %w", err)
		case part.Error != "":
			return resp, errors.New(part.Error)
		}
		resp.Message.Content += part.Message.Content
		if part.Done {
			resp.Metrics, resp.DoneReason = part.Metrics, part.DoneReason
		}
	}
}

// statusError is the ollama client's error for an answer with status 400
// or more: its JSON error message, or the first line of a body that is no
// JSON (an error page of a proxy in front of Ollama).
func statusError(r *http.Response, body []byte) error {
	var e struct {
		Error     string `json:"error"`
		SigninURL string `json:"signin_url"`
	}
	if json.Unmarshal(body, &e) != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return api.StatusError{StatusCode: r.StatusCode, Status: r.Status, ErrorMessage: line[:min(len(line), 512)]}
	}
	if r.StatusCode == http.StatusUnauthorized {
		return api.AuthorizationError{StatusCode: r.StatusCode, Status: r.Status, SigninURL: e.SigninURL}
	}
	return api.StatusError{StatusCode: r.StatusCode, Status: r.Status, ErrorMessage: e.Error}
}

// classify marks an Ollama error with its fault kind; h are the headers of
// the response, if there was one.
func (o *Ollama) classify(ctx context.Context, err error, h http.Header) error {
	var (
		se api.StatusError
		ae api.AuthorizationError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fault.Retry(fmt.Errorf("ollama %s: no answer within %s (REGSCRIBE_MODEL_TIMEOUT)", o.opts.Model, o.opts.Timeout))
	case errors.As(err, &se):
		msg := fmt.Errorf("ollama %s: %s", o.opts.Model, strings.TrimSpace(se.Error()))
		if se.StatusCode == http.StatusNotFound && strings.Contains(se.ErrorMessage, "not found") {
			return fault.Unavailable(fmt.Errorf("%w; pull it with `ollama pull %s` (or set REGSCRIBE_PULL=true)", msg, o.opts.Model))
		}
		return fault.FromStatus(se.StatusCode, retryAfter(h, time.Now()), msg)
	case errors.As(err, &ae):
		return fault.Permanent(fmt.Errorf("ollama %s: %s: the server wants a signed-in client (`ollama signin`)", o.opts.Model, ae.Error()))
	case notThere(err):
		return fault.Unavailable(fmt.Errorf("ollama at %s is not reachable: %w", o.host, err))
	}
	return fault.Retry(fmt.Errorf("ollama %s: %w", o.opts.Model, err))
}

// notThere tells whether err proves the server was not reached (see
// [fault.Unreachable]).
func notThere(err error) bool { return fault.Unreachable(err) }

// Check tells whether the server answers and the model is there, in one
// line a person can act on.
func (o *Ollama) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := o.client.Version(ctx); err != nil {
		return fault.Unavailable(fmt.Errorf("no Ollama server at %s (%v): start it with `ollama serve` and run `ollama pull %s`, set OLLAMA_HOST, use REGSCRIBE_PROVIDER=openai, or REGSCRIBE_PROVIDER=none for a first look without AI (a stand-in that says size and colours)", o.host, rootCause(err), o.opts.Model))
	}
	list, err := o.client.List(ctx)
	if err != nil {
		return fault.Unavailable(fmt.Errorf("Ollama at %s did not list its models: %v", o.host, err))
	}
	for _, m := range list.Models {
		if sameModel(m.Name, o.opts.Model) || sameModel(m.Model, o.opts.Model) {
			return nil
		}
	}
	return fault.Unavailable(fmt.Errorf("model %s is not on the Ollama server at %s: run `ollama pull %s` or set REGSCRIBE_PULL=true", o.opts.Model, o.host, o.opts.Model))
}

// Pull downloads the model to the Ollama server (what `ollama pull` does),
// drawing on progress (nil: no output) one progress bar per layer, as
// Ollama fetches them one after another, and its status lines. It is
// bounded by ctx only: pulls take minutes. Errors are one line: unavailable
// when the server is not there, permanent when the model does not exist.
func (o *Ollama) Pull(ctx context.Context, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	var (
		bar    *progressbar.ProgressBar
		layer  string
		status string
	)
	done := func() {
		if bar != nil && !bar.IsFinished() {
			_ = bar.Finish()
		}
	}
	err := o.client.Pull(ctx, &api.PullRequest{Model: o.opts.Model}, func(p api.ProgressResponse) error {
		if p.Digest != "" && p.Total > 0 {
			if p.Digest != layer {
				done()
				layer = p.Digest
				bar = progressbar.NewOptions64(p.Total,
					progressbar.OptionSetWriter(progress),
					progressbar.OptionSetDescription("pulling "+shortDigest(p.Digest)),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowTotalBytes(true),
					progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionOnCompletion(func() { _, _ = fmt.Fprintln(progress) }),
				)
			}
			if !bar.IsFinished() {
				_ = bar.Set64(min(p.Completed, p.Total))
			}
			return nil
		}
		if p.Status != "" && p.Status != status {
			done()
			status = p.Status
			_, _ = fmt.Fprintln(progress, status)
		}
		return nil
	})
	if err == nil {
		done()
		return nil
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("pulling %s stopped: %w", o.opts.Model, ctx.Err())
	case notThere(err):
		return fault.Unavailable(fmt.Errorf("no Ollama server at %s to pull %s into (%v): start it with `ollama serve` or set OLLAMA_HOST", o.host, o.opts.Model, rootCause(err)))
	case strings.Contains(err.Error(), "file does not exist") || strings.Contains(err.Error(), "not found"):
		return fault.Permanent(fmt.Errorf("Ollama could not pull %s (%v): check the name in REGSCRIBE_MODEL against https://ollama.com/library", o.opts.Model, err))
	}
	return fault.Retry(fmt.Errorf("pulling %s into Ollama at %s failed: %v", o.opts.Model, o.host, err))
}

// shortDigest is the 12 hex digits Ollama shows of a layer digest.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	return d[:min(len(d), 12)]
}

// sameModel compares model names the way Ollama resolves them: no tag means ":latest".
func sameModel(a, b string) bool {
	norm := func(s string) string {
		if !strings.Contains(s, ":") {
			s += ":latest"
		}
		return s
	}
	return norm(a) == norm(b)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
