package imageprep

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// The parsers in this file read untrusted bytes: every index is checked,
// every loop is bounded, and anything unexpected means "orientation 1".

// tagOrientation is the EXIF/TIFF tag of the orientation.
const tagOrientation = 0x0112

// exifOrientation returns the orientation (1-8) stored in IFD0 of the TIFF
// structure t (the payload of an EXIF block, or a TIFF file), or 1.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 1
	}
	n := int(bo.Uint16(t[off:]))
	entries := t[off+2:]
	n = min(n, len(entries)/12)
	for i := range n {
		e := entries[i*12 : i*12+12]
		if bo.Uint16(e) != tagOrientation {
			continue
		}
		var v uint32
		switch bo.Uint16(e[2:]) {
		case 3: // SHORT, as the standard says
			v = uint32(bo.Uint16(e[8:]))
		case 4: // LONG, from sloppy writers
			v = bo.Uint32(e[8:])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// jpegOrientation returns the orientation in the first EXIF APP1 segment of
// the JPEG data, or 1.
func jpegOrientation(data []byte) int {
	o := 1
	walkJPEG(data, func(marker byte, payload []byte) bool {
		if marker == 0xda { // SOS: headers are over
			return false
		}
		if marker == 0xe1 && bytes.HasPrefix(payload, []byte("Exif\x00")) && len(payload) >= 6 {
			o = exifOrientation(payload[6:])
			return false
		}
		return true
	})
	return o
}

// jpegScans counts the scans (SOS segments) of the JPEG data, stopping once
// the count exceeds limit.
func jpegScans(data []byte, limit int) int {
	n := 0
	walkJPEG(data, func(marker byte, _ []byte) bool {
		if marker == 0xda {
			n++
		}
		return n <= limit
	})
	return n
}

// walkJPEG calls visit for each marker segment that has a length (APPn, DQT,
// SOFn, SOS, ...) after the SOI of data, with the segment's payload (cut
// short if data is), until visit returns false, EOI, the end of data or
// anything malformed. After an SOS it skips the entropy-coded data. It reports
// whether it reached the EOI marker.
func walkJPEG(data []byte, visit func(marker byte, payload []byte) bool) (eoi bool) {
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return false
	}
	i := 2
	// Every iteration moves i forward, so the loop ends; the count is a
	// second bound.
	for steps := 0; steps < 1<<20 && i+1 < len(data); steps++ {
		if data[i] != 0xff {
			return false
		}
		m := data[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0x01, m == 0xd8, m >= 0xd0 && m <= 0xd7: // no length
			i += 2
			continue
		case m == 0xd9: // EOI
			return true
		}
		if i+4 > len(data) {
			return false
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		if n < 2 {
			return false
		}
		end := min(i+2+n, len(data))
		if !visit(m, data[i+4:end]) {
			return false
		}
		i = end
		if m == 0xda {
			i = skipEntropy(data, i)
		}
	}
	return false
}

// skipEntropy returns the index of the first marker at or after i that ends
// entropy-coded data (an 0xFF not followed by a stuffed 0x00, a fill 0xFF or
// a restart marker), or len(data).
func skipEntropy(data []byte, i int) int {
	for i < len(data) {
		k := bytes.IndexByte(data[i:], 0xff)
		if k < 0 || i+k+1 >= len(data) {
			return len(data)
		}
		i += k
		switch m := data[i+1]; {
		case m == 0x00, m >= 0xd0 && m <= 0xd7:
			i += 2
		case m == 0xff:
			i++
		default:
			return i
		}
	}
	return len(data)
}

// pngOrientation returns the orientation in the eXIf chunk of the PNG data
// (which must come before the image data), or 1.
func pngOrientation(data []byte) int {
	i := uint64(8)
	for steps := 0; steps < 1<<16 && i+8 <= uint64(len(data)); steps++ {
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		switch typ {
		case "IDAT", "IEND":
			return 1
		case "eXIf":
			return exifOrientation(data[i+8 : min(i+8+n, uint64(len(data)))])
		}
		i += 12 + n
	}
	return 1
}

// webpOrientation returns the orientation in the EXIF chunk of the WebP
// data, or 1.
func webpOrientation(data []byte) int {
	i := uint64(12)
	for steps := 0; steps < 1<<16 && i+8 <= uint64(len(data)); steps++ {
		n := uint64(binary.LittleEndian.Uint32(data[i+4:]))
		if string(data[i:i+4]) == "EXIF" {
			p := data[i+8 : min(i+8+n, uint64(len(data)))]
			// Some writers keep JPEG's "Exif\0\0" prefix.
			if bytes.HasPrefix(p, []byte("Exif\x00")) && len(p) >= 6 {
				p = p[6:]
			}
			return exifOrientation(p)
		}
		i += 8 + n + n&1
	}
	return 1
}

// jpegUnsupported names the kind of the JPEG data when its frame header
// says it is one the decoder cannot read (lossless, hierarchical,
// arithmetic-coded, or not 8-bit), else "".
func jpegUnsupported(data []byte) string {
	what := ""
	walkJPEG(data, func(m byte, payload []byte) bool {
		if m < 0xc0 || m > 0xcf || m == 0xc4 || m == 0xc8 || m == 0xcc {
			return m != 0xda // not a frame header; stop at the first scan
		}
		switch m {
		case 0xc3:
			what = "lossless JPEG"
		case 0xc5, 0xc6, 0xc7:
			what = "hierarchical JPEG"
		case 0xc9, 0xca:
			what = "arithmetic-coded JPEG"
		case 0xcb:
			what = "lossless arithmetic-coded JPEG"
		case 0xcd, 0xce, 0xcf:
			what = "hierarchical arithmetic-coded JPEG"
		default:
			if len(payload) > 0 && payload[0] != 8 {
				what = fmt.Sprintf("%d-bit JPEG", payload[0])
			}
		}
		return false
	})
	return what
}

// jpegCheck says "incomplete jpeg structure" unless the JPEG data is whole.
func jpegCheck(data []byte) string {
	if !jpegComplete(data) {
		return "incomplete jpeg structure"
	}
	return ""
}

// jpegComplete reports whether the JPEG data is well-formed down to its EOI
// marker, with a scan before it; a truncated file is not. It reads no pixels.
func jpegComplete(data []byte) bool {
	scans := 0
	eoi := walkJPEG(data, func(marker byte, _ []byte) bool {
		if marker == 0xda {
			scans++
		}
		return true
	})
	return eoi && scans > 0
}

// pngCheck says "incomplete png structure" unless the PNG data is whole.
func pngCheck(data []byte) string {
	if !pngComplete(data) {
		return "incomplete png structure"
	}
	return ""
}

// pngComplete reports whether the chunks of the PNG data run to an IEND
// chunk, with image data before it; a truncated file's do not. It checks no
// CRC and reads no pixels.
func pngComplete(data []byte) bool {
	i := uint64(8)
	idat := false
	for steps := 0; steps < 1<<20 && i+12 <= uint64(len(data)); steps++ {
		n := uint64(binary.BigEndian.Uint32(data[i:]))
		switch string(data[i+4 : i+8]) {
		case "IDAT":
			idat = true
		case "IEND":
			return idat
		}
		i += 12 + n
	}
	return false
}

// webpCheck says "incomplete webp structure" unless the WebP data is as
// long as its RIFF header says, which a truncated file is not.
func webpCheck(data []byte) string {
	if len(data) < 12 || uint64(len(data)) < 8+uint64(binary.LittleEndian.Uint32(data[4:])) {
		return "incomplete webp structure"
	}
	return ""
}

// gifCheck walks the blocks of the GIF data without decompressing them. It
// says "animated gif" if there is more than one frame (providers that take
// GIF want still ones), and "incomplete gif structure" if the blocks do not
// run to the trailer with a frame before it.
func gifCheck(data []byte) string {
	const incomplete = "incomplete gif structure"
	if len(data) < 13 {
		return incomplete
	}
	i := uint64(13)
	if flags := data[10]; flags&0x80 != 0 { // global colour table
		i += 3 << (flags&7 + 1)
	}
	// skip skips the data sub-blocks at i; false if they run off the end.
	skip := func() bool {
		for steps := 0; steps < 1<<24; steps++ {
			if i >= uint64(len(data)) {
				return false
			}
			n := uint64(data[i])
			i += 1 + n
			if n == 0 {
				return true
			}
		}
		return false
	}
	frames := 0
	for steps := 0; steps < 1<<20 && i < uint64(len(data)); steps++ {
		switch data[i] {
		case 0x21: // extension: introducer, label, sub-blocks
			i += 2
			if !skip() {
				return incomplete
			}
		case 0x2c: // image descriptor
			if frames++; frames > 1 {
				return "animated gif"
			}
			if i+10 > uint64(len(data)) {
				return incomplete
			}
			flags := data[i+9]
			i += 10
			if flags&0x80 != 0 { // local colour table
				i += 3 << (flags&7 + 1)
			}
			i++ // LZW minimum code size
			if !skip() {
				return incomplete
			}
		case 0x3b: // trailer
			if frames == 0 {
				return incomplete
			}
			return ""
		default:
			return incomplete
		}
	}
	return incomplete
}
