//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package wasmdec

import "syscall"

// reserve maps n bytes of anonymous memory, which the system backs with
// pages only as they are written; nil if it cannot.
func reserve(n uint64) []byte {
	if n == 0 || n > 1<<32 || n > uint64(^uint(0)>>1) {
		return nil
	}
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil
	}
	return b
}

// release unmaps what reserve mapped.
func release(b []byte) { _ = syscall.Munmap(b) }
