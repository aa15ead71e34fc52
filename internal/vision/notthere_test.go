package vision

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// Only a failure before the request was sent proves the server is not
// there; anything after the connection was made is a failure of the
// request.
func TestNotThere(t *testing.T) {
	t.Parallel()
	post := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://127.0.0.1:11434/api/chat", Err: err}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", post(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"no such host", post(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "ollama", IsNotFound: true}}), true},
		{"dial timeout", post(&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}), true},
		{"unroutable", post(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}), true},
		{"reset while reading the answer", post(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), false},
		{"broken pipe while writing the request", post(&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}), false},
		{"closed before the answer", post(io.EOF), false},
		{"unexpected EOF", post(fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF)), false},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, notThere(tc.err), tc.name)
	}
}
