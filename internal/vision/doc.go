// Package vision asks vision models to describe photos.
//
// It owns the prompt ([Prompt], [LoadPrompt], the answer's language), the
// answer's [Schema], the reading and cleaning of model text ([ParseAnswer],
// [CleanText]) and the providers:
//
//   - [Ollama]: Ollama's native API through github.com/ollama/ollama/api,
//     with structured output (format = the schema), keep_alive, and [Ollama.Pull]
//     for a model that is not there yet;
//   - [OpenAI]: chat completions through github.com/sashabaranov/go-openai,
//     for OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM,
//     llama.cpp, LM Studio, ...), with response_format json_schema where
//     the server takes it and plain text where it does not.
//
// Both have the same shape: Describe, Model, PromptDigest, Accepts, Check.
// Both pass one contract test suite against fakes of their wire protocols
// (package modeltest). A model that answers in prose still yields a
// description.
//
// Provider failures are classified with package fault: an unreachable server
// is unavailable; timeouts, 429 and 5xx are retryable (no sooner than the
// server's Retry-After or x-ratelimit-reset-*); other 4xx are permanent and
// keep the server's message. A model that is not there differs: Ollama's is
// unavailable (a pull fixes it; jobs wait), OpenAI's permanent (a wrong
// name). Token usage and latency of each call are in [Description.Usage].
//
// It must not touch registries, queues or the environment: bytes and option
// structs in, a [Description] out.
package vision
