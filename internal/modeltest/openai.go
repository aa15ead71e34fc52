package modeltest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// SchemaRejection is the message of the 400 a fake with RejectJSONSchema
// answers, as vLLM and llama.cpp servers do.
const SchemaRejection = "response_format json_schema is not supported"

// OpenAI is a fake OpenAI-compatible server: POST /v1/chat/completions,
// POST /v1/embeddings, GET /v1/models, and Azure's POST
// /openai/deployments/{deployment}/chat/completions. It decodes requests
// with go-openai's own types and checks them: the key, the model, one user
// message of the prompt and one image as a data: URL whose bytes decode
// and match its media type, the detail, and response_format json_schema
// (strict, every property required, no others).
type OpenAI struct {
	*httptest.Server
	recorder
	embedding

	// Key the client must send (Authorization: Bearer, or Azure's api-key
	// header). If empty, none is needed.
	Key string
	// Models lists the models (Azure: deployments) the server has.
	Models []string
	// Detail is the image detail requests must ask for; empty: any.
	Detail string
	// RejectJSONSchema makes the server answer 400 to response_format
	// json_schema, as many OpenAI-compatible servers do.
	RejectJSONSchema bool
	// Answer decides the reply to each valid chat request. If nil,
	// DescribeByDigest is used.
	Answer func(Call) Reply
	// Latency is added before each chat answer.
	Latency time.Duration

	ids atomic.Int64
}

// NewOpenAI starts a fake OpenAI-compatible server that wants key and has
// the given models.
func NewOpenAI(key string, models ...string) *OpenAI {
	f := NewUnstartedOpenAI(key, models...)
	f.Start()
	return f
}

// NewUnstartedOpenAI returns a fake OpenAI-compatible server that is not
// started yet: set its fields or Listener, then call Start.
func NewUnstartedOpenAI(key string, models ...string) *OpenAI {
	f := &OpenAI{Key: key, Models: models}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { f.chat(w, r, "") })
	mux.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		f.chat(w, r, r.PathValue("deployment"))
	})
	mux.HandleFunc("GET /v1/models", f.models)
	mux.HandleFunc("POST /v1/embeddings", f.embeddings)
	f.Server = httptest.NewUnstartedServer(mux)
	return f
}

// BaseURL is the URL clients use, with /v1.
func (f *OpenAI) BaseURL() string { return f.URL + "/v1" }

// apiError writes an error in OpenAI's shape.
func apiError(w http.ResponseWriter, status int, message, typ, code string) {
	e := map[string]any{"message": message, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	writeJSON(w, status, map[string]any{"error": e})
}

// authorized checks the key; azure requests send it as api-key.
func (f *OpenAI) authorized(w http.ResponseWriter, r *http.Request, azure bool) bool {
	if f.Key == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if azure {
		got = r.Header.Get("Api-Key")
	}
	if got == f.Key {
		return true
	}
	if got == "" {
		apiError(w, http.StatusUnauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.", "invalid_request_error", "")
		return false
	}
	apiError(w, http.StatusUnauthorized, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
	return false
}

func (f *OpenAI) hasModel(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.Models, name)
}

func (f *OpenAI) models(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, false) {
		return
	}
	f.mu.Lock()
	models := slices.Clone(f.Models)
	f.mu.Unlock()
	list := []map[string]any{}
	for _, m := range models {
		list = append(list, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "regscribe"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": list})
}

func (f *OpenAI) chat(w http.ResponseWriter, r *http.Request, deployment string) {
	defer f.enter()()
	azure := deployment != ""
	if !f.authorized(w, r, azure) {
		return
	}
	var req openai.ChatCompletionRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.problem("chat body: %v", err)
		apiError(w, http.StatusBadRequest, "We could not parse the JSON body of your request: "+err.Error(), "invalid_request_error", "")
		return
	}
	switch {
	case azure && r.URL.Query().Get("api-version") == "":
		f.problem("Azure request without api-version")
		apiError(w, http.StatusNotFound, "Resource not found", "", "404")
		return
	case azure && !f.hasModel(deployment):
		apiError(w, http.StatusNotFound, "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.", "", "DeploymentNotFound")
		return
	case !azure && !f.hasModel(req.Model):
		apiError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist", req.Model), "invalid_request_error", "model_not_found")
		return
	}
	call := f.check(req)
	if azure {
		call.Model = deployment
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	answer := f.Answer
	f.mu.Unlock()

	if req.ResponseFormat != nil && req.ResponseFormat.Type == openai.ChatCompletionResponseFormatTypeJSONSchema && f.RejectJSONSchema {
		apiError(w, http.StatusBadRequest, SchemaRejection, "invalid_request_error", "")
		return
	}
	var rep Reply
	switch {
	case len(call.Images) == 0 && call.Prompt != "":
		rep = Reply{Content: "OK"} // a text-only request: a start-up check
	case len(call.Images) == 0:
		apiError(w, http.StatusBadRequest, "Invalid content: no text or image", "invalid_request_error", "")
		return
	case answer == nil:
		rep = DescribeByDigest(call)
	default:
		rep = answer(call)
	}
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
		typ, code := "invalid_request_error", ""
		switch {
		case rep.Status == http.StatusTooManyRequests:
			typ, code = "requests", "rate_limit_exceeded"
		case rep.Status >= 500:
			typ = "server_error"
		}
		if rep.Code != "" {
			code = rep.Code
		}
		apiError(w, rep.Status, rep.Content, typ, code)
		return
	}
	writeJSON(w, http.StatusOK, openai.ChatCompletionResponse{
		ID:      fmt.Sprintf("chatcmpl-fake%d", f.ids.Add(1)),
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   req.Model,
		Choices: []openai.ChatCompletionChoice{{
			Message:      openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: rep.Content, Refusal: rep.Refusal},
			FinishReason: cmp.Or(openai.FinishReason(rep.FinishReason), openai.FinishReasonStop),
		}},
		Usage: openai.Usage{PromptTokens: 850, CompletionTokens: 42, TotalTokens: 892},
	})
}

// check reads a chat request into a Call, noting what a real server would
// reject or regscribe should not send.
func (f *OpenAI) check(req openai.ChatCompletionRequest) Call {
	call := Call{Model: req.Model}
	if req.Stream {
		f.problem("streaming requested; regscribe asks for one answer")
	}
	if len(req.Messages) != 1 {
		f.problem("want 1 message, got %d", len(req.Messages))
		return call
	}
	m := req.Messages[0]
	if m.Role != openai.ChatMessageRoleUser {
		f.problem("message role %q", m.Role)
	}
	if m.Content != "" {
		call.Prompt = m.Content // a text-only request
	}
	for _, p := range m.MultiContent {
		switch p.Type {
		case openai.ChatMessagePartTypeText:
			if call.Prompt != "" {
				f.problem("more than one text part")
			}
			call.Prompt = p.Text
		case openai.ChatMessagePartTypeImageURL:
			f.image(&call, p.ImageURL)
		default:
			f.problem("unknown content part type %q", p.Type)
		}
	}
	if call.Prompt == "" {
		f.problem("empty prompt")
	}
	if len(call.Images) > 1 {
		f.problem("want 1 image, got %d", len(call.Images))
	}
	if rf := req.ResponseFormat; rf != nil {
		switch {
		case rf.Type != openai.ChatCompletionResponseFormatTypeJSONSchema || rf.JSONSchema == nil:
			f.problem("response_format %q without json_schema", rf.Type)
		default:
			js := rf.JSONSchema
			if js.Schema != nil {
				call.Format, _ = json.Marshal(js.Schema)
			}
			f.checkSchema(js.Name, js.Strict, call.Format)
		}
	} else if len(call.Images) > 0 && !f.RejectJSONSchema {
		f.problem("no response_format json_schema in request")
	}
	if req.MaxTokens > 0 && req.MaxCompletionTokens > 0 {
		f.problem("both max_tokens and max_completion_tokens set")
	}
	return call
}

// image decodes a data: URL and checks it.
func (f *OpenAI) image(call *Call, u *openai.ChatMessageImageURL) {
	if u == nil {
		f.problem("image_url part without image_url")
		return
	}
	if f.Detail != "" && string(u.Detail) != f.Detail {
		f.problem("detail %q, want %q", u.Detail, f.Detail)
	}
	rest, ok := strings.CutPrefix(u.URL, "data:")
	mediaType, data, ok2 := strings.Cut(rest, ";base64,")
	if !ok || !ok2 || !strings.HasPrefix(mediaType, "image/") {
		f.problem("image URL is not data:image/<type>;base64,…: %.40q", u.URL)
		return
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		f.problem("image base64: %v", err)
		return
	}
	switch mediaType {
	case "image/jpeg", "image/png", "image/webp", "image/gif":
	default:
		f.problem("image type %s is not one OpenAI takes", mediaType)
	}
	if sniffed := http.DetectContentType(b); sniffed != mediaType {
		f.problem("image declared %s but its bytes are %s", mediaType, sniffed)
	}
	if len(call.Images) == 0 {
		call.MediaType, call.Detail = mediaType, string(u.Detail)
	}
	call.Images = append(call.Images, b)
}

// checkSchema checks a json_schema as OpenAI does for strict mode.
func (f *OpenAI) checkSchema(name string, strict bool, schema json.RawMessage) {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		f.problem("json_schema name %q must match ^[a-zA-Z0-9_-]+$", name)
	}
	if !strict {
		f.problem("json_schema is not strict")
	}
	var s struct {
		Type                 string                     `json:"type"`
		Properties           map[string]json.RawMessage `json:"properties"`
		Required             []string                   `json:"required"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
	}
	if err := json.NewDecoder(bytes.NewReader(schema)).Decode(&s); err != nil || s.Type != "object" {
		f.problem("json_schema schema is not an object schema: %s", schema)
		return
	}
	if s.AdditionalProperties == nil || *s.AdditionalProperties {
		f.problem("strict json_schema needs additionalProperties: false")
	}
	for p := range s.Properties {
		if !slices.Contains(s.Required, p) {
			f.problem("strict json_schema needs property %q in required", p)
		}
	}
}
