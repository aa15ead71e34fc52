package wasmdec

import "github.com/tetratelabs/wazero/experimental"

// limitedMemory is the linear memory of one module instance (an
// experimental.MemoryAllocator that makes itself the memory): it never
// grows past limit, and remembers the largest size it refused.
//
// Where the system can (reserve), it reserves limit bytes of address space
// up front, outside the Go heap: growing then only hands the module more of
// it, copying nothing, and a page costs memory only once the module writes
// it. Elsewhere it grows a Go slice, copying on each reallocation (at the
// peak, the old and the new slice).
type limitedMemory struct {
	limit   uint64
	refused uint64
	// refusedGrowth, if set, is called when growth is refused.
	refusedGrowth func()
	// reserved is the address space reserved (unmapped by Free), or nil.
	reserved []byte
	// buf is the slice grown when nothing is reserved.
	buf []byte
}

// Allocate implements experimental.MemoryAllocator: the memory starts at
// initial bytes and grows to at most most (what the module declares).
func (m *limitedMemory) Allocate(initial, most uint64) experimental.LinearMemory {
	// The module's initial memory must be given (wazero cannot fail an
	// allocation that small gracefully), and growing past its declared
	// maximum is refused before Reallocate is asked.
	m.limit = min(max(m.limit, initial), most)
	m.reserved = reserve(m.limit)
	return m
}

// Reallocate implements experimental.LinearMemory.
func (m *limitedMemory) Reallocate(size uint64) []byte {
	switch {
	case size > m.limit:
		m.refused = max(m.refused, size)
		if m.refusedGrowth != nil {
			m.refusedGrowth()
		}
		return nil
	case m.reserved != nil:
		return m.reserved[:size]
	case size <= uint64(cap(m.buf)):
		m.buf = m.buf[:size]
		return m.buf
	}
	grown := make([]byte, size, min(m.limit, max(size, 2*uint64(cap(m.buf)))))
	copy(grown, m.buf)
	m.buf = grown
	return grown
}

// Free implements experimental.LinearMemory. It may be called again.
func (m *limitedMemory) Free() {
	if m.reserved != nil {
		release(m.reserved)
		m.reserved = nil
	}
	m.buf = nil
}
