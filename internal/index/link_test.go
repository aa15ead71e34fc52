package index

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// A link's value in the history file keeps what the superseding event
// listed; a value written before the listings were kept lists every photo.
func TestLinkValues(t *testing.T) {
	la, lb := layerKey("sha256:la"), layerKey("sha256:lb")
	legacy := binary.BigEndian.AppendUint64(nil, 42)
	for name, c := range map[string]struct {
		value  []byte
		at     int64
		listed [][16]byte
		ok     bool
	}{
		"listing":      {value: encodeLink(linkOp{at: 42, listed: [][16]byte{la, lb}}), at: 42, listed: [][16]byte{la, lb}, ok: true},
		"none listed":  {value: encodeLink(linkOp{at: 42, listed: [][16]byte{}}), at: 42, listed: [][16]byte{}, ok: true},
		"legacy":       {value: legacy, at: 42, ok: true},
		"short":        {value: legacy[:7]},
		"torn listing": {value: append(encodeLink(linkOp{at: 42, listed: [][16]byte{la}}), 1)},
		"unknown mark": {value: append(append(legacy, 'X'), la[:]...)},
	} {
		t.Run(name, func(t *testing.T) {
			at, listed, ok := decodeLink(c.value)
			require.Equal(t, c.ok, ok)
			if !ok {
				return
			}
			require.Equal(t, c.at, at)
			require.Equal(t, c.listed, listed)
			l := link{listed: listed}
			require.Equal(t, c.listed == nil || len(c.listed) == 2, l.lists(la), "a legacy link lists every photo")
			require.Equal(t, c.listed == nil || len(c.listed) == 2, l.lists(lb))
		})
	}
}
