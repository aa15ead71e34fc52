// Package fault is regscribe's one error taxonomy.
//
// Every error that reaches the worker's settle step is one of four kinds:
//
//   - [KindRetry]: try again later with backoff (a 5xx, a timeout, a 429);
//     plain, unclassified errors are retryable too.
//   - [KindPermanent]: trying again cannot help (a corrupt photo, an unknown
//     model, a registry that is not configured); the job is given up at once.
//   - [KindUnavailable]: a dependency is down as a whole (the model server
//     refuses connections); the job waits for it without spending an attempt.
//   - [KindSkip]: nothing to do (no image layer, already described); the job
//     is acknowledged.
//
// Packages that know why something failed wrap the error with one of the
// constructors; the worker maps the kind to Ack, Nak or Term in one place.
package fault

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Kind says what to do with a failed job.
type Kind int

// The kinds of failure, see the package documentation.
const (
	KindRetry Kind = iota
	KindPermanent
	KindUnavailable
	KindSkip
)

func (k Kind) String() string {
	switch k {
	case KindPermanent:
		return "permanent"
	case KindUnavailable:
		return "unavailable"
	case KindSkip:
		return "skip"
	default:
		return "retry"
	}
}

// Error is an error with its kind and, for retries, the delay a server asked for.
type Error struct {
	Kind Kind
	// After is the delay the other side asked for (Retry-After); zero if none.
	After time.Duration
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent marks err as one that no retry can fix.
func Permanent(err error) error { return wrap(KindPermanent, 0, err) }

// Retry marks err as worth another try after backoff.
func Retry(err error) error { return wrap(KindRetry, 0, err) }

// RetryAfter marks err as worth another try no sooner than after d.
func RetryAfter(err error, d time.Duration) error { return wrap(KindRetry, d, err) }

// Unavailable marks err as a dependency being down as a whole.
func Unavailable(err error) error { return wrap(KindUnavailable, 0, err) }

// Skip returns an error that says the job needs no work, and why.
func Skip(format string, args ...any) error {
	return &Error{Kind: KindSkip, Err: fmt.Errorf(format, args...)}
}

func wrap(k Kind, after time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, After: after, Err: err}
}

// Classify returns the kind of err (the outermost one marked) and the delay
// asked for. Unmarked errors are retryable.
func Classify(err error) (Kind, time.Duration) {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind, fe.After
	}
	return KindRetry, 0
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool {
	got, _ := Classify(err)
	return err != nil && got == k
}

// FromStatus marks err, the failure of a request that a server answered
// with HTTP status, by what the status means for a retry. It is the one
// mapping from status to kind that the registry and model clients share:
//
//   - 408, 429 and 5xx: retryable, no sooner than after (a Retry-After the
//     server sent; zero if none);
//   - 401 and 403: permanent (credentials do not fix themselves);
//   - any other status: permanent.
//
// Callers decide what a 404 means before calling it (a manifest that is
// gone is a skip, an Ollama model that is not pulled is unavailable).
func FromStatus(status int, after time.Duration, err error) error {
	if err == nil {
		return nil
	}
	if Transient(status) {
		return RetryAfter(err, after)
	}
	return Permanent(err)
}

// Transient reports whether an HTTP status says the same request may
// succeed later: 408, 429 and any 5xx.
func Transient(status int) bool {
	return status == 408 || status == 429 || status >= 500
}

// Unreachable reports whether err proves a server was not reached, so a
// request was never sent: the name did not resolve, or the connection
// could not be made (refused, unroutable, timed out). A connection that
// was made and then reset, closed (EOF) or broken while the request was
// written or answered is not: the server was there and may have failed on
// this very request. Clients mark an unreachable server [Unavailable].
func Unreachable(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
