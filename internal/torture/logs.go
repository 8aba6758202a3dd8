package torture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// line is one record of a log file.
type line struct {
	// K is the kind: "i" attempted batch, "a" acknowledged append, "e"
	// append error, "h" watch header (the watched stream), "w" watched
	// event, "o" operation of the commit workload (attempted, then
	// answered), "d" event delivered to a subscription's handler.
	K     string `json:"k"`
	Batch *Batch `json:"b,omitempty"`
	Ack   *Ack   `json:"a,omitempty"`
	Seen  *Seen  `json:"w,omitempty"`
	Op    *Op    `json:"o,omitempty"`
	// LOp is an operation of the lifecycle workload (kind "l").
	LOp *LOp `json:"l,omitempty"`
	// Delivery is a delivered event of the subscription workload.
	Delivery *Delivery `json:"d,omitempty"`
	// Stream is the watched stream of a header.
	Stream string `json:"s,omitempty"`
	// Class and Err describe an append error.
	Class string `json:"c,omitempty"`
	Err   string `json:"e,omitempty"`
}

// logFile appends lines to a file, each with one write(2) on an O_APPEND
// descriptor, so that a process killed at any moment leaves whole lines.
type logFile struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
}

// openLog opens path for appending, first cutting a torn last line (one
// without its newline) so that new lines start on a line of their own.
func openLog(path string) (*logFile, error) {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if n := len(data); n > 0 && data[n-1] != '\n' {
		if err := os.Truncate(path, int64(bytes.LastIndexByte(data, '\n')+1)); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) write(v line) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.buf = append(append(l.buf[:0], b...), '\n')
	_, err = l.f.Write(l.buf)
	return err
}

// writeLines writes lines with one write(2). A process killed at any
// moment leaves whole lines (openLog and readLines drop a torn last one):
// all of them, none, or (should the kernel cut the write short) a prefix.
func (l *logFile) writeLines(lines []line) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = l.buf[:0]
	for _, v := range lines {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		l.buf = append(append(l.buf, b...), '\n')
	}
	_, err := l.f.Write(l.buf)
	return err
}

func (l *logFile) close() error { return l.f.Close() }

// readLines returns the whole lines of path; a torn last line is ignored.
func readLines(path string) ([]line, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1]
	}
	var out []line
	for n, raw := range bytes.Split(data, []byte{'\n'}) {
		if len(raw) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// Logs is what the writers and watchers of a run logged.
type Logs struct {
	Intents []Batch
	Acks    []Ack
	Watches []WatchLog
	// Errors counts append errors by class.
	Errors map[string]int
	// Samples holds one message per error class.
	Samples map[string]string
}

// ReadLogs reads every log in dir.
func ReadLogs(dir string) (Logs, error) {
	logs := Logs{Errors: map[string]int{}, Samples: map[string]string{}}
	writers, err := filepath.Glob(filepath.Join(dir, "writer-*.log"))
	if err != nil {
		return logs, err
	}
	sort.Strings(writers)
	for _, p := range writers {
		lines, err := readLines(p)
		if err != nil {
			return logs, err
		}
		for _, l := range lines {
			switch {
			case l.K == "i" && l.Batch != nil:
				logs.Intents = append(logs.Intents, *l.Batch)
			case l.K == "a" && l.Ack != nil:
				logs.Acks = append(logs.Acks, *l.Ack)
			case l.K == "e":
				logs.Errors[l.Class]++
				if _, ok := logs.Samples[l.Class]; !ok {
					logs.Samples[l.Class] = l.Err
				}
			}
		}
	}
	watches, err := filepath.Glob(filepath.Join(dir, "watch-*.log"))
	if err != nil {
		return logs, err
	}
	sort.Strings(watches)
	for _, p := range watches {
		lines, err := readLines(p)
		if err != nil {
			return logs, err
		}
		w := WatchLog{Name: strings.TrimSuffix(filepath.Base(p), ".log")}
		for _, l := range lines {
			switch {
			case l.K == "h":
				w.Stream = l.Stream
			case l.K == "w" && l.Seen != nil:
				w.Seen = append(w.Seen, *l.Seen)
			case l.K == "e":
				logs.Errors[l.Class]++
				if _, ok := logs.Samples[l.Class]; !ok {
					logs.Samples[l.Class] = l.Err
				}
			}
		}
		if w.Stream == "" {
			return logs, fmt.Errorf("%s: no header line", p)
		}
		logs.Watches = append(logs.Watches, w)
	}
	return logs, nil
}
