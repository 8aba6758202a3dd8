package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/esv2/esv2/eventstore"
)

// The export format is JSON Lines: one event per line, in position order,
// as read --json prints it except that data is always base64 of the bytes
// as stored (encoding "base64"), so that an import stores them unchanged.
// import also takes "encoding":"json" lines, whose data is a JSON value
// stored as its text: a way to load hand-written events.

func (a *app) exportCommand() *cobra.Command {
	var out, prefix string
	var after, to uint64
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write events as JSON Lines, for import into another store",
		Long: `Write the store's events, in position order, as JSON Lines: one object per
event with its stream, version, position, ID, type, time, metadata and data
(base64 of the bytes as stored). Export a whole store, the streams of a
prefix (a category), or a position range, to a file or to stdout.

The output is what import reads: pipe one into the other to copy a store,
from SQLite to PostgreSQL for instance. A progress bar shows on a terminal.

Snapshots and subscription checkpoints are not exported. Snapshots are a
cache of the events: a Repository on the new store loads from the events
and takes its snapshots again as it saves. Subscriptions are positions in
the old store's log, which the new store numbers afresh: start them again
from the start (or reset them) on the new store.`,
		Example: `  esv2 export --db app.db > app.jsonl
  esv2 export --db app.db --prefix order- --after 1000 --to 2000 --out orders.jsonl
  esv2 export --db app.db | esv2 import --dsn postgres://localhost/app`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to > 0 && to <= after {
				return usageErr("--to %d must be past --after %d", to, after)
			}
			ctx := cmd.Context()
			return a.withStore(ctx, readOnly, func(c *conn) (err error) {
				w := a.stdout
				if out != "" {
					f, err := os.Create(out)
					if err != nil {
						return err
					}
					defer func() {
						if cerr := f.Close(); err == nil {
							err = cerr
						}
					}()
					w = f
				}
				head, err := c.store.Info(ctx, eventstore.AllStreams)
				if err != nil {
					return err
				}
				end := head.Position
				if to > 0 {
					end = min(to, end)
				}
				var span int64
				if end > after {
					span = int64(end - after)
				}
				bar := a.newProgress(span, "export", "positions", false)
				n, err := exportEvents(ctx, c.store, w, eventstore.Filter{StreamPrefix: prefix}, after, end, func(pos uint64) {
					bar.set(int64(pos - after))
				})
				bar.finish()
				if err != nil {
					return err
				}
				if out != "" {
					fmt.Fprintf(a.stdout, "exported %d events to %s\n", n, out)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "write to `FILE` instead of stdout")
	f.StringVar(&prefix, "prefix", "", "only streams whose IDs start with `PREFIX`")
	f.Uint64Var(&after, "after", 0, "only events past position `N`")
	f.Uint64Var(&to, "to", 0, "only events up to position `N` (0: the last)")
	return cmd
}

// exportEvents writes the events past position after up to end, in
// position order, and returns how many it wrote.
func exportEvents(ctx context.Context, s eventstore.Store, w io.Writer, f eventstore.Filter, after, end uint64, seen func(pos uint64)) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	n := 0
	if end > after {
		for r, err := range s.Read(ctx, eventstore.AllStreams, eventstore.ReadOptions{From: eventstore.After(after), Filter: f}) {
			if err != nil {
				return n, err
			}
			if r.Position > end {
				break
			}
			e := newEventJSON(r)
			data, _ := json.Marshal(base64.StdEncoding.EncodeToString(r.Data))
			e.Data, e.Encoding = data, encBase64
			if err := enc.Encode(e); err != nil {
				return n, err
			}
			n++
			seen(r.Position)
		}
	}
	return n, bw.Flush()
}

func (a *app) importCommand() *cobra.Command {
	var in string
	var batch int
	var truncated bool
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Append events from JSON Lines (export's output), keeping stream versions",
		Long: `Append the events of JSON Lines (as export writes them) to the store,
creating an SQLite file or setting up a PostgreSQL schema if needed.

Each event keeps its stream and version: an event whose version the target
stream already has is skipped, and the others are appended expecting the
version before theirs. So an import is idempotent, and one that was
interrupted (Ctrl-C, a lost connection) resumes when run again with the
same input. Events keep their IDs, types, metadata, times and data bytes;
positions are the target's own. An event ID already stored in another
stream is an error, as is a version gap between the input and the target.

A stream the source had truncated starts past version 1 in the input. With
--truncated, import stores placeholder events (type esv2.import.placeholder)
below its first version and truncates them away once that event is stored,
so the stream keeps its versions; watchers of the target see the
placeholders come and go, and a run that stopped in between removes them
when run again with --truncated. Without it, such a stream is a version gap. A deleted
stream is not exported (it has no events), so its ID is free in the target.

Events are appended in batches of up to --batch lines, the streams of a
batch concurrently. A progress bar shows on a terminal.`,
		Example: `  esv2 import --dsn postgres://localhost/app --in app.jsonl
  esv2 export --db app.db | esv2 import --dsn postgres://localhost/app --schema shop`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 {
				return usageErr("--batch must be at least 1, got %d", batch)
			}
			ctx := cmd.Context()
			r := a.stdin
			var size int64 = -1
			if in != "" {
				f, err := os.Open(in)
				if err != nil {
					return err
				}
				defer func() { _ = f.Close() }() // read only: nothing to lose
				if fi, err := f.Stat(); err == nil {
					size = fi.Size()
				}
				r = f
			}
			return a.withStore(ctx, readWrite, func(c *conn) error {
				bar := a.newProgress(size, "import", "", true)
				im := &importer{store: c.store, batch: batch, workers: 32, truncated: truncated, progress: func(_, bytes int64) { bar.set(bytes) }}
				st, err := im.run(ctx, r)
				bar.finish()
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("%w (appended %d events; run the same import again to resume)", err, st.Appended)
					}
					return err
				}
				if a.json {
					return printJSON(a.stdout, map[string]any{"read": st.Read, "appended": st.Appended, "skipped": st.Skipped, "streams": st.Streams})
				}
				fmt.Fprintf(a.stdout, "imported %d events into %d streams (%d already there)\n", st.Appended, st.Streams, st.Skipped)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&in, "in", "i", "", "read `FILE` instead of stdin")
	f.IntVar(&batch, "batch", 2000, "lines per batch (`N`)")
	f.BoolVar(&truncated, "truncated", false, "import a stream whose input starts past version 1 as truncated before that version")
	return cmd
}

// importStats counts what an import did.
type importStats struct {
	Read, Appended, Skipped int64
	Streams                 int
}

// importer appends JSON Lines of events to a store, keeping versions.
type importer struct {
	store   eventstore.Store
	batch   int // lines per batch
	workers int // streams appended at once
	// progress, if set, is called after each batch with the lines and
	// bytes read so far.
	progress func(lines, bytes int64)
	// truncated accepts a stream new to the target whose input starts
	// past version 1, as a stream truncated before that version.
	truncated bool

	mu       sync.Mutex
	versions map[string]uint64 // the target's version of each stream seen
	// cut holds, for a stream the source had truncated, the version its
	// input starts at: the placeholders import appended below it are to
	// be truncated away (see appendStream).
	cut   map[string]uint64
	stats importStats
}

// importLine is one decoded input line.
type importLine struct {
	line    int64
	stream  string
	version uint64
	event   eventstore.Event
}

// maxAppend caps the events of one Append; a batch's stream with more is
// appended in several.
const maxAppend = 500

func (im *importer) run(ctx context.Context, r io.Reader) (importStats, error) {
	im.versions = make(map[string]uint64)
	im.cut = make(map[string]uint64)
	br := bufio.NewReaderSize(r, 1<<16)
	var lineNo, bytes int64
	var pending []importLine
	for {
		b, err := br.ReadBytes('\n')
		bytes += int64(len(b))
		if len(b) > 0 && (len(b) != 1 || b[0] != '\n') { // skip empty lines
			lineNo++
			l, perr := parseLine(lineNo, b)
			if perr != nil {
				return im.stats, perr
			}
			pending = append(pending, l)
		}
		eof := errors.Is(err, io.EOF)
		if err != nil && !eof {
			return im.stats, err
		}
		if len(pending) >= im.batch || (eof && len(pending) > 0) {
			if err := im.flush(ctx, pending); err != nil {
				return im.stats, err
			}
			im.stats.Read += int64(len(pending))
			pending = pending[:0]
			if im.progress != nil {
				im.progress(lineNo, bytes)
			}
		}
		if eof {
			im.stats.Streams = len(im.versions)
			return im.stats, nil
		}
	}
}

func parseLine(n int64, b []byte) (importLine, error) {
	var e struct {
		Stream   *string           `json:"stream"`
		Version  *uint64           `json:"version"`
		ID       string            `json:"id"`
		Type     string            `json:"type"`
		Time     string            `json:"time"`
		Metadata map[string]string `json:"metadata"`
		Data     json.RawMessage   `json:"data"`
		Encoding string            `json:"encoding"`
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("line %d: %s", n, fmt.Sprintf(format, args...))
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return importLine{}, bad("not an event object: %v", err)
	}
	switch {
	case e.Stream == nil || *e.Stream == "":
		return importLine{}, bad("no stream")
	case e.Version == nil || *e.Version == 0:
		return importLine{}, bad("no version (versions start at 1)")
	}
	l := importLine{line: n, stream: *e.Stream, version: *e.Version,
		event: eventstore.Event{ID: e.ID, Type: e.Type, Metadata: e.Metadata}}
	if e.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return importLine{}, bad("time: %v", err)
		}
		l.event.Time = t
	}
	switch e.Encoding {
	case encBase64:
		var s string
		if err := json.Unmarshal(e.Data, &s); err != nil {
			return importLine{}, bad("data: want a base64 string: %v", err)
		}
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return importLine{}, bad("data: %v", err)
		}
		l.event.Data = d
	case encJSON:
		l.event.Data = []byte(e.Data)
	case encNone, "":
		if len(e.Data) > 0 && string(e.Data) != "null" {
			return importLine{}, bad("data without an encoding (base64 or json)")
		}
	default:
		// msgpack shown decoded (read --json) cannot be turned back into
		// the same bytes.
		return importLine{}, bad("encoding %q cannot be imported: use export's output (base64) or json", e.Encoding)
	}
	return l, nil
}

// flush appends one batch: each stream's lines in order, streams
// concurrently.
func (im *importer) flush(ctx context.Context, lines []importLine) error {
	var order []string
	byStream := make(map[string][]importLine)
	for _, l := range lines {
		if _, ok := byStream[l.stream]; !ok {
			order = append(order, l.stream)
		}
		byStream[l.stream] = append(byStream[l.stream], l)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(im.workers)
	for _, id := range order {
		g.Go(func() error { return im.appendStream(gctx, id, byStream[id]) })
	}
	return g.Wait()
}

// placeholderType is the type of the events import appends in front of a
// stream whose input starts past version 1 (the source had truncated it),
// so that its events keep their versions; the truncation that follows
// removes them. A watcher of the target sees them come and go.
const placeholderType = "esv2.import.placeholder"

func (im *importer) appendStream(ctx context.Context, id string, lines []importLine) error {
	im.mu.Lock()
	cur, known := im.versions[id]
	cut, cutting := im.cut[id]
	im.mu.Unlock()
	if !known {
		info, err := im.store.Info(ctx, id)
		if err != nil {
			return fmt.Errorf("stream %q: %w", id, err)
		}
		if info.Deleted {
			return fmt.Errorf("line %d: stream %q: %w in the target", lines[0].line, id, eventstore.ErrStreamDeleted)
		}
		cur = info.Version
		// An earlier --truncated run may have stopped between a stream's
		// placeholders and their truncation (only such a run writes
		// placeholders: a plain import pays no read for this).
		if im.truncated && cur > 0 && info.Count == cur {
			if cut, err = im.placeholdersEnd(ctx, id); err != nil {
				return err
			}
			cutting = cut > 0
		}
	}
	var skipped int64
	var evs []eventstore.Event
	fill := 0 // placeholders at the front of evs
	next := cur
	for _, l := range lines {
		switch {
		case l.version <= cur:
			skipped++ // the target has it: stored by an earlier run
			continue
		case l.version != next+1 && ((next == 0 && im.truncated) || (cutting && next < cut)):
			// The input starts past version 1 (or, on a resumed run,
			// past the placeholders stored so far): fill the versions
			// below with placeholders, truncated away once it is stored.
			for range l.version - next - 1 {
				evs = append(evs, eventstore.Event{Type: placeholderType})
				fill++
			}
			cut, cutting = l.version, true
		case l.version != next+1:
			hint := ""
			if next == 0 {
				hint = "; if the source truncated it, --truncated imports it truncated the same way"
			}
			return fmt.Errorf("line %d: stream %q: version %d does not follow version %d (the target's, or the input's line before)%s", l.line, id, l.version, next, hint)
		}
		next = l.version
		evs = append(evs, l.event)
	}
	for len(evs) > 0 {
		k := min(len(evs), maxAppend)
		want := cur + uint64(k)
		res, err := im.store.Append(ctx, id, eventstore.Exact(cur), evs[:k]...)
		if err != nil {
			return fmt.Errorf("stream %q: append versions %d to %d: %w", id, cur+1, want, err)
		}
		if res.Version != want {
			// Some of the events' IDs were already stored in this stream
			// at other versions: the target is not a prefix of the input.
			return fmt.Errorf("stream %q: append versions %d to %d: the stream is at version %d after it: %d of the events' IDs were already stored at other versions",
				id, cur+1, want, res.Version, len(res.Duplicates))
		}
		ph := min(fill, k)
		fill -= ph
		im.mu.Lock()
		im.stats.Appended += int64(k - ph)
		im.mu.Unlock()
		cur, evs = want, evs[k:]
	}
	if cutting && cur >= cut {
		lc, ok := im.store.(eventstore.Lifecycle)
		if !ok {
			return fmt.Errorf("stream %q starts at version %d, and the target cannot truncate streams: %w", id, cut, errors.ErrUnsupported)
		}
		if err := lc.TruncateStream(ctx, id, cut); err != nil {
			return fmt.Errorf("stream %q: truncate the placeholders before version %d: %w", id, cut, err)
		}
		cutting = false
	}
	im.mu.Lock()
	im.versions[id] = cur
	if cutting {
		im.cut[id] = cut
	} else {
		delete(im.cut, id)
	}
	im.stats.Skipped += skipped
	im.mu.Unlock()
	return nil
}

// placeholdersEnd returns the version of stream id's first event that is
// not a placeholder (its version + 1 when they all are), or 0 when its
// first event is not one.
func (im *importer) placeholdersEnd(ctx context.Context, id string) (uint64, error) {
	for r, err := range im.store.Read(ctx, id, eventstore.ReadOptions{Limit: 1}) {
		if err != nil {
			return 0, fmt.Errorf("stream %q: %w", id, err)
		}
		if r.Type != placeholderType {
			return 0, nil
		}
	}
	var v uint64
	for r, err := range im.store.Read(ctx, id, eventstore.ReadOptions{}) {
		if err != nil {
			return 0, fmt.Errorf("stream %q: %w", id, err)
		}
		if r.Type != placeholderType {
			if v == 0 {
				return 0, nil
			}
			return r.Version, nil
		}
		v = r.Version
	}
	if v == 0 {
		return 0, nil
	}
	return v + 1, nil
}
