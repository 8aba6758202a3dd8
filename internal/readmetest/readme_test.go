// Package readmetest keeps the code shown in README.md true: every Go block
// in the README that is marked with
//
//	<!-- file: PATH -->
//
// must equal the file PATH of the repository, which the normal build
// compiles and whose own tests check its output.
package readmetest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var block = regexp.MustCompile("(?s)<!-- file: ([^ ]+) -->\\s*```go\\n(.*?)```")

func TestREADMEBlocksMatchFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	matches := block.FindAllStringSubmatch(string(readme), -1)
	if len(matches) == 0 {
		t.Fatal("README.md has no <!-- file: PATH --> Go blocks; the Quick Start must be one")
	}
	for _, m := range matches {
		path, shown := m[1], m[2]
		t.Run(path, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(path)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.TrimSpace(string(src)), strings.TrimSpace(shown)); diff != "" {
				t.Errorf("README.md block for %s differs from the file (-file +README):\n%s", path, diff)
			}
		})
	}
}
