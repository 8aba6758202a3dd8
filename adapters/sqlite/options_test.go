package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esv2/esv2/adapters/sqlite"
	"github.com/esv2/esv2/eventstore"
)

// TestOptionsRefused: Open refuses an option given a value it cannot take
// with ErrInvalidInput naming the option, before it creates the file.
func TestOptionsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.db")
	for _, opt := range []sqlite.Option{
		sqlite.WithMaxEventSize(0), sqlite.WithReaders(0), sqlite.WithPollInterval(0),
		sqlite.WithPollInterval(-time.Second), sqlite.WithBusyTimeout(-1), sqlite.WithMaxGroupSize(0),
	} {
		s, err := sqlite.Open(t.Context(), path, opt)
		if err == nil {
			_ = s.Close()
		}
		if !errors.Is(err, eventstore.ErrInvalidInput) || !strings.Contains(err.Error(), "sqlite: With") {
			t.Errorf("Open with a bad option: %v, want ErrInvalidInput naming the option", err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused Opens left a file behind (stat: %v)", err)
	}
}
