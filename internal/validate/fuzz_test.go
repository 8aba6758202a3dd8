package validate_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/esv2/esv2/eventstore"
	"github.com/esv2/esv2/internal/validate"
)

// validName is the oracle for a stream ID, event type or event ID.
func validName(s string) bool {
	return s != "" && len(s) <= eventstore.MaxIDLength && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// FuzzValidateAppend checks Append against an independent oracle
// of the rules it documents: it never panics, refuses with a
// *ValidationError (ErrInvalidInput) exactly when a rule is broken, and
// accepts otherwise. Explore with
// `go test -run '^$' -fuzz '^FuzzValidateAppend$' ./internal/validate`.
func FuzzValidateAppend(f *testing.F) {
	f.Add("s", int64(-1), "t", "", []byte("x"), "", "", uint8(1), 0)
	f.Add("$all", int64(0), "t", "a", []byte(nil), "k", "v", uint8(2), 0)
	f.Add("s\x00", int64(-2), "t\xff", "a", []byte{}, "", "v", uint8(3), 10)
	f.Add("'; DROP TABLE events; --", int64(5), "t", "dup", []byte("abc"), "k", "v\x00", uint8(2), 4)
	f.Add(strings.Repeat("s", eventstore.MaxIDLength+1), int64(-3), "", "", []byte(nil), "", "", uint8(0), 1)
	f.Fuzz(func(t *testing.T, stream string, expected int64, typ, id string, data []byte, key, value string, n uint8, maxSize int) {
		count := int(n % 4)
		events := make([]eventstore.Event, count)
		for i := range events {
			events[i] = eventstore.Event{ID: id, Type: typ, Data: data}
			if key != "" || value != "" {
				events[i].Metadata = map[string]string{key: value}
			}
		}
		err := validate.Append(stream, eventstore.ExpectedVersion(expected), events, maxSize)

		limit := maxSize
		if limit <= 0 {
			limit = eventstore.DefaultMaxEventSize
		}
		valid := validName(stream) && stream != eventstore.AllStreams && eventstore.ExpectedVersion(expected).Valid()
		if count > 0 {
			valid = valid && validName(typ) &&
				(id == "" || (validName(id) && count == 1)) && // one ID twice in a batch is refused
				len(data)+len(key)+len(value) <= limit
			if events[0].Metadata != nil {
				valid = valid && key != "" && utf8.ValidString(key) && utf8.ValidString(value) &&
					!strings.ContainsRune(key, 0) && !strings.ContainsRune(value, 0)
			}
		}
		switch {
		case valid && err != nil:
			t.Fatalf("refused a valid append (stream %q, expected %d, %d events of type %q id %q, %d data bytes, metadata %q=%q, max %d): %v",
				stream, expected, count, typ, id, len(data), key, value, maxSize, err)
		case !valid && err == nil:
			t.Fatalf("accepted an invalid append (stream %q, expected %d, %d events of type %q id %q, %d data bytes, metadata %q=%q, max %d)",
				stream, expected, count, typ, id, len(data), key, value, maxSize)
		case err != nil:
			var ve *eventstore.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, eventstore.ErrInvalidInput) {
				t.Fatalf("error %v (%T) is not a *ValidationError matching ErrInvalidInput", err, err)
			}
		}
	})
}
