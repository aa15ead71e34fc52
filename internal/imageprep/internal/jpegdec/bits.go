package jpegdec

import "encoding/binary"

// bitReader reads the entropy-coded data of a scan (T.81 F.2.2.5): bytes
// with 0xff00 standing for 0xff, ended by a marker. Bits are kept in acc
// from its most significant bit down.
type bitReader struct {
	data []byte
	pos  int    // next byte of data to read
	acc  uint64 // the next n bits, left-aligned
	n    uint
	// pad is how many of acc's bits are zeros added past the end of the
	// coded data (a marker or the end of the input): reading into them
	// means the data is cut short.
	pad uint
	end bool // the coded data ended at pos
}

// fill tops acc up to at least 57 bits.
func (r *bitReader) fill() {
	if !r.end && r.pos+8 <= len(r.data) {
		// The whole bytes that fit, at once, unless one is 0xff.
		w := binary.BigEndian.Uint64(r.data[r.pos:])
		if x := ^w; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			k := (64 - r.n) / 8
			r.acc |= w >> (64 - 8*k) << (64 - r.n - 8*k)
			r.n += 8 * k
			r.pos += int(k)
			return
		}
	}
	for r.n <= 56 {
		if !r.end {
			if r.pos < len(r.data) {
				c := r.data[r.pos]
				if c != 0xff {
					r.pos++
					r.acc |= uint64(c) << (56 - r.n)
					r.n += 8
					continue
				}
				if r.pos+1 < len(r.data) && r.data[r.pos+1] == 0 {
					r.pos += 2
					r.acc |= 0xff << (56 - r.n)
					r.n += 8
					continue
				}
			}
			r.end = true
		}
		r.n += 8
		r.pad += 8
	}
}

// short reports whether more bits were read than the coded data holds.
func (r *bitReader) short() bool { return r.n < r.pad }

// bit reads one bit; acc must hold it.
func (r *bitReader) bit() bool {
	b := r.acc>>63 != 0
	r.acc <<= 1
	r.n--
	return b
}

// receive reads s bits (0 to 16) as an unsigned number; acc must hold them.
func (r *bitReader) receive(s uint) int32 {
	v := int32(r.acc >> 1 >> (63 - s)) // s == 0 gives 0
	r.acc <<= s
	r.n -= s
	return v
}

// receiveExtend reads s bits and extends them to the signed value they
// stand for (T.81 F.2.2.1, EXTEND); acc must hold them.
func (r *bitReader) receiveExtend(s uint) int32 {
	v := r.receive(s)
	if s > 0 && v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// decode reads one Huffman-coded value of t (T.81 F.2.2.3, DECODE); acc
// must hold 16 bits.
func (r *bitReader) decode(t *huffman) (uint8, error) {
	if e := t.lookup[r.acc>>(64-lookupBits)]; e != 0 {
		l := uint(e >> 8)
		r.acc <<= l
		r.n -= l
		return uint8(e), nil
	}
	for l := uint(lookupBits + 1); l <= 16; l++ {
		code := int32(r.acc >> (64 - l))
		if code <= t.maxcode[l] {
			r.acc <<= l
			r.n -= l
			return t.vals[uint8(t.valptr[l]+code)], nil
		}
	}
	return 0, FormatError("bad Huffman code")
}

// restart moves past the RSTn marker that should end the data read so far
// (T.81 E.2.4), dropping the bits left of the last byte. Whatever lies
// between them is skipped; any RST marker is taken, only another marker
// or the end of the input is an error.
func (r *bitReader) restart() error {
	p := r.pos
	for {
		for p < len(r.data) && r.data[p] != 0xff {
			p++
		}
		for p < len(r.data) && r.data[p] == 0xff {
			p++
		}
		if p >= len(r.data) {
			return errEnd
		}
		m := r.data[p]
		p++
		if m == 0 {
			continue
		}
		if m < markerRST0 || m > markerRST7 {
			return FormatError("missing RST marker")
		}
		*r = bitReader{data: r.data, pos: p}
		return nil
	}
}
