package sqlite

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetadataRoundTrip(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"a": "b"},
		{"user": "ada", "correlation": "c-1", "empty": ""},
		{`quote"d`: `back\slash`, "html": "<a&b>", "ctl": "tab\there", "uni": "é€😀"},
		{"colon:key": "comma,value", "brace}": "{x}"},
	} {
		var buf bytes.Buffer
		if err := encodeMetadata(&buf, m); err != nil {
			t.Fatal(err)
		}
		got, err := decodeMetadata(buf.Bytes())
		if err != nil {
			t.Fatalf("decode %s: %v", buf.Bytes(), err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", buf.Bytes(), diff)
		}
	}
}

func TestDecodeFlatRefusesOtherShapes(t *testing.T) {
	for _, in := range []string{``, `{`, `[]`, `{"a":1}`, `{"a" : "b"}`, `{"a":"b",}`, `{"a":"b"}x`, `{"a":"b"`, `{"a\"":"b"}`, `{"a":"b""c":"d"}`} {
		if m, ok := decodeFlat([]byte(in)); ok {
			t.Errorf("decodeFlat(%q) = %v, true; want false", in, m)
		}
	}
}
