package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// session finds the README's esv2 session: a console block after the
// marker, of "$ esv2 ..." lines each followed by its output.
var session = regexp.MustCompile("(?s)<!-- esv2-session: demo store -->\\s*```console\\n(.*?)```")

// TestREADMESession runs the commands the README's "Command line" section
// shows, on the demo store the scripts use, and checks that each prints
// exactly what the README says it prints.
func TestREADMESession(t *testing.T) {
	readmePath, err := filepath.Abs(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	update := os.Getenv("ESV2_UPDATE_README") != ""
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	m := session.FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no <!-- esv2-session: demo store --> console block")
	}
	t.Chdir(t.TempDir())
	if err := seed(t.Context(), "app.db"); err != nil {
		t.Fatal(err)
	}
	type step struct {
		line string
		want string
	}
	var steps []step
	for _, l := range strings.SplitAfter(string(m[1]), "\n") {
		if cmdLine, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, step{line: strings.TrimSpace(cmdLine)})
		} else if len(steps) > 0 {
			steps[len(steps)-1].want += l
		}
	}
	if len(steps) < 5 {
		t.Fatalf("the session shows %d commands; want the section's examples", len(steps))
	}
	var actual strings.Builder // the session as it runs now
	for _, s := range steps {
		// A pipeline of esv2 commands: each one's stdout is the next's
		// stdin.
		var in []byte
		var out bytes.Buffer
		for _, part := range strings.Split(s.line, " | ") {
			argv := shellWords(part)
			if len(argv) == 0 || argv[0] != "esv2" {
				t.Fatalf("README session line %q: only esv2 commands can be checked", s.line)
			}
			var stderr bytes.Buffer
			out.Reset()
			if code := run(argv[1:], bytes.NewReader(in), &out, &stderr); code != exitOK {
				t.Fatalf("%s: exit status %d: %s", part, code, stderr.String())
			}
			in = bytes.Clone(out.Bytes())
		}
		actual.WriteString("$ " + s.line + "\n" + out.String())
		if diff := cmp.Diff(s.want, out.String()); diff != "" && !update {
			t.Errorf("README shows for %q (-README +actual):\n%s(ESV2_UPDATE_README=1 rewrites the block)", s.line, diff)
		}
	}
	if update {
		i := bytes.Index(readme, m[1])
		readme = append(readme[:i:i], append([]byte(actual.String()), readme[i+len(m[1]):]...)...)
		if err := os.WriteFile(readmePath, readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shellWords splits a command line at spaces, keeping single-quoted
// words whole (all the README's lines need).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
