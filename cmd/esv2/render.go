package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/esv2/esv2/eventstore"
)

// Data encodings, as the "encoding" field names them.
const (
	encJSON    = "json"    // the bytes are JSON, shown as they are
	encMsgpack = "msgpack" // the bytes are msgpack, shown decoded as JSON
	encBase64  = "base64"  // anything else, shown as base64
	encNone    = "none"    // no data
)

// renderData shows event or snapshot data as a JSON value: JSON as it
// is (compacted), msgpack decoded generically, anything else base64.
func renderData(b []byte) (json.RawMessage, string) {
	if len(b) == 0 {
		return json.RawMessage("null"), encNone
	}
	if json.Valid(b) {
		var buf bytes.Buffer
		if json.Compact(&buf, b) == nil {
			return buf.Bytes(), encJSON
		}
	}
	if v, ok := decodeMsgpack(b); ok {
		if out, err := json.Marshal(v); err == nil {
			return out, encMsgpack
		}
	}
	out, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
	return out, encBase64
}

// decodeMsgpack decodes b as exactly one msgpack value into something
// encoding/json can print. Bytes that merely start like msgpack (one
// value, then more) are not msgpack.
func decodeMsgpack(b []byte) (any, bool) {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	v, err := dec.DecodeInterface()
	if err != nil || r.Len() != 0 {
		return nil, false
	}
	return jsonable(v)
}

// jsonable converts a generically decoded msgpack value for
// encoding/json: maps with non-string keys get their keys printed, byte
// strings become base64, times RFC 3339, and floats that JSON cannot
// hold (NaN, infinities) make the whole value not shown as JSON.
func jsonable(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			c, ok := jsonable(e)
			if !ok {
				return nil, false
			}
			x[k] = c
		}
		return x, true
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			c, ok := jsonable(e)
			if !ok {
				return nil, false
			}
			m[fmt.Sprint(k)] = c
		}
		return m, true
	case []any:
		for i, e := range x {
			c, ok := jsonable(e)
			if !ok {
				return nil, false
			}
			x[i] = c
		}
		return x, true
	case []byte:
		return base64.StdEncoding.EncodeToString(x), true
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return x, !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
	}
	return v, true
}

// eventJSON is an event as read, tail and export print it with --json.
type eventJSON struct {
	Position uint64            `json:"position"`
	Stream   string            `json:"stream"`
	Version  uint64            `json:"version"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type"`
	Time     string            `json:"time"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Data     json.RawMessage   `json:"data"`
	Encoding string            `json:"encoding"`
}

func newEventJSON(r eventstore.Recorded) eventJSON {
	data, enc := renderData(r.Data)
	return eventJSON{
		Position: r.Position, Stream: r.StreamID, Version: r.Version, ID: r.ID, Type: r.Type,
		Time: formatTime(r.Time), Metadata: r.Metadata, Data: data, Encoding: enc,
	}
}

// formatTime prints t in RFC 3339 (UTC, with as many fractional digits as
// it has); the zero time is "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table prints aligned columns for people.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// A tab or newline in a value would break the columns.
		cells[i] = strings.NewReplacer("\t", `\t`, "\n", `\n`).Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }
