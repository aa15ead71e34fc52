//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package wasmdec

// reserve reserves nothing here: the memory grows as a Go slice.
func reserve(uint64) []byte { return nil }

// release is never called here.
func release([]byte) {}
