package imageprep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// SniffLen is how many first bytes of a file [Sniff] reads: enough for
// every format's magic bytes and an ISO media file's brands.
const SniffLen = 512

// Sniffed is what the first bytes of a file say it is.
type Sniffed struct {
	// MediaType is the media type of a format [Prepare] decodes
	// ("image/jpeg", …, "image/heic", "image/avif"), or "" when the bytes
	// are no such image.
	MediaType string
	// Looks says in words what the bytes look like: "JPEG image",
	// "text (text/plain; charset=utf-8)", "PDF document", "JPEG XL",
	// "binary data (first bytes …)": a noun.
	Looks string
	// Image is true when the bytes are an image, one Prepare decodes or
	// not (JPEG XL, an icon): converted to a format it decodes, it is a
	// photo.
	Image bool
}

// Sniff tells from head, the first bytes of a file ([SniffLen] of them,
// or the whole file when it is shorter), whether it is an image of a
// format [Prepare] decodes, and what it looks like otherwise. It reads
// only magic bytes: a file it names a format of may still fail to decode
// (Prepare says why then), but one it does not name is none of them. It
// is stricter than Prepare's own check where magic bytes are short: a BMP
// needs a known header size too, so text that starts with "BM" is text.
func Sniff(head []byte) Sniffed {
	f, err := sniff(head)
	if err == nil && (f != &formatBMP || bmpHeader(head)) {
		return Sniffed{MediaType: f.mediaType, Looks: f.name + " image", Image: true}
	}
	if errors.Is(err, ErrUnsupported) {
		// A format it knows and cannot decode (JPEG XL, JPEG 2000, an ISO
		// media file of another brand): the reason names it. Only the ISO
		// media file (a video, say) is no image.
		video := len(head) >= 8 && string(head[4:8]) == "ftyp"
		name, _, _ := strings.Cut(unwrapReason(err), " is not")
		return Sniffed{Looks: name, Image: !video}
	}
	if len(head) == 0 {
		return Sniffed{Looks: "empty"}
	}
	for _, m := range notImages {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return Sniffed{Looks: m.name}
		}
	}
	ct := http.DetectContentType(head)
	switch {
	case ct == "image/bmp" || strings.HasPrefix(ct, "text/plain"):
		// DetectContentType names BMP by "BM" alone (bmpHeader said no),
		// and text by the absence of control bytes, whatever the encoding.
		if text(head) {
			return Sniffed{Looks: "text (text/plain; charset=utf-8)"}
		}
	case strings.HasPrefix(ct, "text/"):
		return Sniffed{Looks: "text (" + ct + ")"}
	case ct != "application/octet-stream":
		return Sniffed{Looks: ct, Image: strings.HasPrefix(ct, "image/")}
	}
	return Sniffed{Looks: fmt.Sprintf("binary data (first bytes % x)", head[:min(len(head), 8)])}
}

// unwrapReason is err's message without the sentinel's words.
func unwrapReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "imageprep: ")
	return strings.TrimPrefix(s, ErrUnsupported.Error()+": ")
}

// bmpHeader reports whether head, which starts with "BM", has the header
// of a BMP file: its DIB header (at byte 14) is one of the sizes the
// format's versions define.
func bmpHeader(head []byte) bool {
	if len(head) < 18 {
		return false
	}
	return slices.Contains([]uint32{12, 16, 40, 52, 56, 64, 108, 124}, binary.LittleEndian.Uint32(head[14:18]))
}

// text reports whether head is UTF-8 text (its last character may be cut
// off) without control characters other than tab, line breaks, form feed
// and escape.
func text(head []byte) bool {
	for _, c := range head {
		if c < 0x20 && !strings.ContainsRune("\t\n\r\f\x1b", rune(c)) || c == 0x7f {
			return false
		}
	}
	// A head cut from a longer file may end inside a character.
	for cut := 0; cut < utf8.UTFMax && cut <= len(head); cut++ {
		i := len(head) - cut
		if utf8.Valid(head[:i]) && (cut == 0 || !utf8.FullRune(head[i:])) {
			return true
		}
	}
	return false
}
