package jpegdec

import (
	"fmt"
	"math/bits"
)

// scanComp is a component of a scan with its tables.
type scanComp struct {
	c      *component
	dc, ac *huffman
	pred   int32 // DC prediction
}

// scan is a scan header (T.81 B.2.3) and the state of its decoding.
type scan struct {
	comps  []scanComp
	ss, se int  // spectral selection
	ah, al uint // successive approximation
	eobrun int32
	r      bitReader
}

// parseScan reads a scan header and decodes the scan that follows it.
func (d *decoder) parseScan(seg []byte) error {
	if !d.frame {
		return FormatError("scan before frame")
	}
	if len(seg) < 1 {
		return FormatError("SOS length")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(d.comps) || len(seg) != 4+2*ns {
		return FormatError("SOS length")
	}
	s := &scan{comps: make([]scanComp, ns)}
	blocks := 0
	for i := range s.comps {
		id, tables := seg[1+2*i], seg[2+2*i]
		j := 0
		for j < len(d.comps) && d.comps[j].id != id {
			j++
		}
		if j == len(d.comps) {
			return FormatError("scan component not in frame")
		}
		for k := range i {
			if s.comps[k].c == &d.comps[j] {
				return FormatError("repeated scan component")
			}
		}
		td, ta := tables>>4, tables&15
		if td > 3 || ta > 3 {
			return FormatError("Huffman table selector")
		}
		s.comps[i] = scanComp{c: &d.comps[j], dc: &d.dc[td], ac: &d.ac[ta]}
		blocks += d.comps[j].h * d.comps[j].v
	}
	if ns > 1 && blocks > 10 {
		return FormatError("more than 10 blocks in an MCU")
	}
	p := seg[1+2*ns:]
	s.ss, s.se, s.ah, s.al = int(p[0]), int(p[1]), uint(p[2]>>4), uint(p[2]&15)
	if d.progressive {
		switch {
		case s.ss > s.se, s.se > 63, s.al > 13, s.ah > 13:
			return FormatError("progressive scan parameters")
		case s.ss == 0 && s.se != 0:
			return FormatError("progressive scan mixes DC and AC")
		case s.ss > 0 && ns != 1:
			return FormatError("interleaved AC scan")
		}
	} else {
		s.ss, s.se, s.ah, s.al = 0, 63, 0, 0
	}
	for _, sc := range s.comps {
		if s.ss == 0 && s.ah == 0 && !sc.dc.defined || s.se > 0 && (!d.progressive || s.ah == 0) && !sc.ac.defined {
			return FormatError("undefined Huffman table")
		}
		if d.progressive && sc.c.coef == nil {
			sc.c.coef = make([]int32, sc.c.bw*sc.c.bh*d.n*d.n)
			sc.c.nonzero = make([]uint64, sc.c.bw*sc.c.bh)
		}
		if !d.progressive && sc.c.plane == nil {
			sc.c.plane = make([]byte, sc.c.bw*sc.c.bh*d.n*d.n)
		}
	}
	s.r = bitReader{data: d.data, pos: d.pos}
	err := d.decodeScan(s)
	d.pos = s.r.pos
	return err
}

// decodeScan decodes the MCUs of s (T.81 A.2): in an interleaved scan each
// holds h×v blocks of each component; in a scan of one component each is
// one block, over the component's own width and height rather than whole
// MCUs.
func (d *decoder) decodeScan(s *scan) error {
	var blk [64]int32
	units, across := d.mcusX*d.mcusY, d.mcusX
	if len(s.comps) == 1 {
		c := s.comps[0].c
		w := (d.width*c.h + d.hmax - 1) / d.hmax
		h := (d.height*c.v + d.vmax - 1) / d.vmax
		across = (w + 7) / 8
		units = across * ((h + 7) / 8)
	}
	for u := range units {
		if d.restart > 0 && u > 0 && u%d.restart == 0 {
			if err := s.r.restart(); err != nil {
				return err
			}
			s.eobrun = 0
			for i := range s.comps {
				s.comps[i].pred = 0
			}
		}
		mx, my := u%across, u/across
		for i := range s.comps {
			sc := &s.comps[i]
			bh, bv := 1, 1
			if len(s.comps) > 1 {
				bh, bv = sc.c.h, sc.c.v
			}
			for by := my * bv; by < (my+1)*bv; by++ {
				for bx := mx * bh; bx < (mx+1)*bh; bx++ {
					if err := d.decodeBlock(s, sc, bx, by, &blk); err != nil {
						return err
					}
				}
			}
		}
		if s.r.short() {
			if s.r.pos >= len(d.data) {
				return errEnd
			}
			return FormatError(fmt.Sprintf("scan data ends %d MCUs short", units-u))
		}
	}
	return nil
}

// decodeBlock decodes the block (bx, by) of sc in the way of scan s.
func (d *decoder) decodeBlock(s *scan, sc *scanComp, bx, by int, blk *[64]int32) error {
	c := sc.c
	if !d.progressive {
		// Only the n×n the scale reads are cleared: the rest is never
		// read. Fixed-size stores, not a call to clear each row.
		switch d.n {
		case 8:
			*blk = [64]int32{}
		case 4:
			for v := 0; v < 32; v += 8 {
				*(*[4]int32)(blk[v:]) = [4]int32{}
			}
		default:
			blk[0], blk[1], blk[8], blk[9] = 0, 0, 0, 0
		}
		if err := d.sequentialBlock(&s.r, sc, blk); err != nil {
			return err
		}
		d.output(c, bx, by, blk)
		return nil
	}
	m, b := d.n*d.n, by*c.bw+bx
	coef := c.coef[b*m : b*m+m]
	nonzero := &c.nonzero[b]
	switch {
	case s.ss == 0 && s.ah == 0:
		if s.r.n < 32 {
			s.r.fill()
		}
		t, err := s.r.decode(sc.dc)
		if err != nil {
			return err
		}
		if t > 11 {
			return FormatError("DC difference size")
		}
		sc.pred += s.r.receiveExtend(uint(t))
		coef[0] = sc.pred << s.al
	case s.ss == 0:
		if s.r.n < 1 {
			s.r.fill()
		}
		if s.r.bit() {
			coef[0] |= 1 << s.al
		}
	case s.ah == 0:
		return s.firstAC(d, sc, coef, nonzero)
	default:
		return s.refineAC(d, sc, coef, nonzero)
	}
	return nil
}

// sequentialBlock decodes a block of a sequential scan (T.81 F.2.2) into
// blk, dequantized, in natural order.
func (d *decoder) sequentialBlock(r *bitReader, sc *scanComp, blk *[64]int32) error {
	q := &d.quant[sc.c.tq]
	if r.n < 32 {
		r.fill()
	}
	// A DC table's symbol is a size, which the fast look-up takes as a
	// run of 0 (and size 0 as EOB, a difference of 0).
	if e := sc.dc.fast[r.acc>>(64-lookupBits)]; e != 0 && e&0x0f00 == 0 {
		l := uint(e & 0xff)
		r.acc <<= l
		r.n -= l
		sc.pred += e >> 16
	} else {
		t, err := r.decode(sc.dc)
		if err != nil {
			return err
		}
		if t > 11 { // T.81 table F.1: 11 bits at 8-bit precision
			return FormatError("DC difference size")
		}
		sc.pred += r.receiveExtend(uint(t))
	}
	blk[0] = sc.pred * q[0]
	fast := &sc.ac.fast
	// acc and n are r's, kept in registers across the hot loop.
	acc, n := r.acc, r.n
	for k := 1; k < 64; k++ {
		if n < 32 {
			r.acc, r.n = acc, n
			r.fill()
			acc, n = r.acc, r.n
		}
		if e := fast[acc>>(64-lookupBits)]; e != 0 {
			// Code and value in one look-up.
			// l is at most lookupBits: the mask spares the compiler's
			// code for shifts of 64 and more, on the loop's critical
			// path.
			l := uint(e & 0xff)
			acc <<= l & 63
			n -= l
			if e&fastEOB != 0 {
				break
			}
			k += int(e>>8) & 15
			if k > 63 {
				return FormatError("AC coefficients past the block")
			}
			// Without a branch: a coefficient the scale drops goes to
			// a slot of blk that is never read (decoder.keep).
			blk[d.keep[k&63]&63] = e >> 16 * q[k&63]
			continue
		}
		r.acc, r.n = acc, n
		run, size, err := r.symbol(sc.ac)
		if err != nil {
			return err
		}
		if size == 0 {
			switch run {
			case 0:
				return nil // EOB
			case 15:
				acc, n = r.acc, r.n
				k += 15 // ZRL: 16 zeros
				continue
			}
			// End-of-band runs are progressive scans' (T.81 G.1.2.2).
			return FormatError("undefined AC symbol")
		}
		k += run
		if k > 63 {
			return FormatError("AC coefficients past the block")
		}
		v := r.receiveExtend(size)
		acc, n = r.acc, r.n
		blk[d.keep[k&63]&63] = v * q[k&63]
	}
	r.acc, r.n = acc, n
	return nil
}

// firstAC decodes the first scan of the band ss..se of a block (T.81
// G.1.2.2): coefficients scaled by 2^al, or one block of an end-of-band
// run.
func (s *scan) firstAC(d *decoder, sc *scanComp, coef []int32, nonzero *uint64) error {
	if s.eobrun > 0 {
		s.eobrun--
		return nil
	}
	r := &s.r
	fast := &sc.ac.fast
	for k := s.ss; k <= s.se; k++ {
		if r.n < 32 {
			r.fill()
		}
		if e := fast[r.acc>>(64-lookupBits)]; e != 0 {
			l := uint(e & 0xff)
			r.acc <<= l
			r.n -= l
			if e&fastEOB != 0 {
				return nil // an end-of-band run of this block alone
			}
			k += int(e>>8) & 15
			if k > s.se {
				return FormatError("AC coefficients past the band")
			}
			d.setAC(k, e>>16<<s.al, coef, nonzero)
			continue
		}
		run, size, err := r.symbol(sc.ac)
		if err != nil {
			return err
		}
		if size == 0 {
			if run != 15 {
				s.eobrun = 1<<run + r.receive(uint(run)) - 1
				return nil
			}
			k += 15
			continue
		}
		k += run
		if k > s.se {
			return FormatError("AC coefficients past the band")
		}
		d.setAC(k, r.receiveExtend(size)<<s.al, coef, nonzero)
	}
	return nil
}

// refineAC decodes a refinement scan of the band ss..se of a block (T.81
// G.1.2.3): one more bit of every coefficient already non-zero, and the
// coefficients that become non-zero (±2^al).
func (s *scan) refineAC(d *decoder, sc *scanComp, coef []int32, nonzero *uint64) error {
	r := &s.r
	p1, m1 := int32(1)<<s.al, int32(-1)<<s.al
	nz := *nonzero
	k := s.ss
	if s.eobrun == 0 {
		for ; k <= s.se; k++ {
			run, size, err := r.symbol(sc.ac)
			if err != nil {
				return err
			}
			var v int32
			switch {
			case size == 1:
				v = m1
				if r.bit() {
					v = p1
				}
			case size != 0:
				return FormatError("refinement coefficient size")
			case run != 15:
				s.eobrun = 1<<run + r.receive(uint(run))
			}
			if s.eobrun > 0 {
				break
			}
			// Skip run zero coefficients, refining the non-zero ones on
			// the way, and put v at the next zero one.
			for ; k <= s.se; k++ {
				if nz&(1<<k) != 0 {
					d.correct(r, k, coef, p1, m1)
					continue
				}
				if run == 0 {
					if v != 0 {
						d.setAC(k, v, coef, &nz)
					}
					break
				}
				run--
			}
		}
	}
	if s.eobrun > 0 {
		// The rest of the band is in an end-of-band run: only the
		// corrections of its non-zero coefficients.
		for m := nz >> k << k & (2<<s.se - 1); m != 0; m &= m - 1 {
			d.correct(r, bits.TrailingZeros64(m), coef, p1, m1)
		}
		s.eobrun--
	}
	*nonzero = nz
	return nil
}

// symbol reads the next run/size symbol of an AC table; a size past T.81
// table F.2's 10 bits (at 8-bit precision) is an error.
func (r *bitReader) symbol(t *huffman) (run int, size uint, err error) {
	if r.n < 32 {
		r.fill()
	}
	rs, err := r.decode(t)
	if rs&15 > 10 {
		return 0, 0, FormatError("AC coefficient size")
	}
	return int(rs >> 4), uint(rs & 15), err
}

// setAC sets the coefficient at zig-zag position k of a progressive
// block to v: in coef if the scale uses it; its bit in nonzero, by zig-zag
// position, says it is not zero.
func (d *decoder) setAC(k int, v int32, coef []int32, nonzero *uint64) {
	if i := d.stored[k&63]; i >= 0 {
		coef[i] = v
	}
	if v != 0 {
		*nonzero |= 1 << (k & 63)
	}
}

// correct reads the correction bit of the non-zero coefficient at zig-zag
// position k of a progressive block and adds it away from zero (T.81
// G.1.2.3), if the scale uses the coefficient.
func (d *decoder) correct(r *bitReader, k int, coef []int32, p1, m1 int32) {
	if r.n < 1 {
		r.fill()
	}
	if !r.bit() {
		return
	}
	if i := d.stored[k&63]; i >= 0 && coef[i]&p1 == 0 {
		if coef[i] >= 0 {
			coef[i] += p1
		} else {
			coef[i] += m1
		}
	}
}
