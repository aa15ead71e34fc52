// Package vision asks vision models to describe photos.
//
// It owns the prompt, the answer's schema, the cleaning of model text and
// the providers (Ollama now; an OpenAI-compatible one has the same shape).
// Provider failures are classified with package fault: an unreachable server
// is unavailable, timeouts, 429 and 5xx are retryable, other 4xx permanent.
// It must not touch registries or queues: bytes in, a [Description] out.
package vision
