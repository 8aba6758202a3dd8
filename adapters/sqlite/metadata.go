package sqlite

import (
	"bytes"
	"encoding/json"
)

// encodeMetadata appends m as a JSON object to buf. HTML characters are not
// escaped, so that the common value, free of backslashes, decodes on the
// fast path of decodeMetadata.
func encodeMetadata(buf *bytes.Buffer, m map[string]string) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// decodeMetadata decodes a JSON object of strings as written by
// encodeMetadata. Objects without escapes (nearly all) are split by hand,
// several times faster than encoding/json; anything else goes through
// encoding/json.
func decodeMetadata(b []byte) (map[string]string, error) {
	if m, ok := decodeFlat(b); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal(b, &m)
	return m, err
}

// decodeFlat parses {"k":"v",...} with no whitespace and no backslash in
// any string. It reports false for anything else.
func decodeFlat(b []byte) (map[string]string, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || bytes.IndexByte(b, '\\') >= 0 {
		return nil, false
	}
	m := make(map[string]string, bytes.Count(b, []byte{':'}))
	i := 1
	if b[i] == '}' {
		return m, i == len(b)-1
	}
	str := func() (string, bool) {
		if i >= len(b) || b[i] != '"' {
			return "", false
		}
		end := bytes.IndexByte(b[i+1:], '"')
		if end < 0 {
			return "", false
		}
		s := string(b[i+1 : i+1+end])
		i += end + 2
		return s, true
	}
	for {
		k, ok := str()
		if !ok || i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i++
		v, ok := str()
		if !ok || i >= len(b) {
			return nil, false
		}
		m[k] = v
		switch b[i] {
		case ',':
			i++
		case '}':
			return m, i == len(b)-1
		default:
			return nil, false
		}
	}
}
