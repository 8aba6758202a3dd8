package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/esv2/esv2/eventstore"
)

// What the writer knows of a group it sent, and how it learns the truth
// when the connection cannot tell it (issue 9 item 1): see doc.go,
// "Connection faults while committing".

// maxAttempts bounds the runs of a group that certainly stored nothing
// and failed for a reason another run may not meet: a concurrent writer
// (see retryable) or a lost connection.
const maxAttempts = 5

// outcome is what the writer knows of a group it tried to commit.
type outcome int

const (
	// notWritten: the group certainly stored nothing. It failed before it
	// was sent, or the server refused one of its statements before COMMIT
	// (the rest of the pipeline is then skipped).
	notWritten outcome = iota
	// committed: COMMIT's result arrived, or the outcome row says so.
	committed
	// unknown: the connection failed after the group was sent and before
	// COMMIT's result arrived, and it is not known (yet) whether the group
	// committed.
	unknown
)

// resolveGroup learns the outcome of a group whose connection failed
// after it was sent (cause): committed with its rows, notWritten (then
// it is fenced and may run again), or, when the database cannot be asked
// within cfg.resolveTimeout or the store is closing, unknown with an
// error wrapping eventstore.ErrUnknownOutcome and cause.
func (d *pgDriver) resolveGroup(group []*appendReq, token uint64, cause error) ([]groupRow, outcome, error) {
	d.outcomeChecks.Add(1)
	// Not bgCtx: Close cancels that first, and a group it cancelled
	// still deserves its true outcome (within Close's bound).
	ctx, cancel := context.WithTimeout(d.stopCtx, d.cfg.resolveTimeout)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		rows, done, err := d.lookupOutcome(ctx, token, len(group))
		if err == nil && done {
			return rows, committed, nil
		}
		if err == nil {
			return nil, notWritten, cause
		}
		last = err
		// 10, 20, 40 ... ms, at most 500 ms apart, until the bound.
		if !sleep(ctx, min(time.Duration(10<<min(attempt, 6))*time.Millisecond, 500*time.Millisecond)) {
			break
		}
	}
	d.unknownOutcomes.Add(1)
	return nil, unknown, fmt.Errorf("postgres: append: %w: the connection failed while it committed (%w), and its outcome could not be looked up: %w",
		eventstore.ErrUnknownOutcome, cause, last)
}

// lookupOutcome reports whether the group with token committed, with its
// rows, on a connection of its own. It first fences the token: if the
// group has not written its outcome row yet (it may still be running on
// a connection the client gave up on), the row now holds the token with
// no results, and the group fails at its own upsert and rolls back (see
// migrations/0003). If the group wrote its row but has not finished, the
// upsert waits for it. Both statements are idempotent, so a look-up that
// fails half-way is simply run again.
func (d *pgDriver) lookupOutcome(ctx context.Context, token uint64, n int) ([]groupRow, bool, error) {
	if _, err := d.pool.Exec(ctx, d.q.fenceOutcome, d.writerID, int64(token)); err != nil {
		return nil, false, err
	}
	var (
		got                 int64
		statuses            []int32
		versions, positions []int64
		extras              pgtype.Text
	)
	err := d.pool.QueryRow(ctx, d.q.readOutcome, d.writerID).Scan(&got, &statuses, &versions, &positions, &extras)
	if err != nil {
		return nil, false, err
	}
	if got != int64(token) {
		return nil, false, fmt.Errorf("postgres: append: outcome row of writer %s holds group %d, want %d", d.writerID, got, token)
	}
	if statuses == nil {
		return nil, false, nil // fenced: the group did not commit and never will
	}
	var ex []json.RawMessage
	if extras.Valid {
		if err := json.Unmarshal([]byte(extras.String), &ex); err != nil {
			return nil, false, fmt.Errorf("postgres: append: outcome row: %w", err)
		}
	}
	if len(statuses) != n || len(versions) != n || len(positions) != n || len(ex) != n {
		return nil, false, fmt.Errorf("postgres: append: outcome row of group %d holds %d results for %d appends", token, len(statuses), n)
	}
	rows := make([]groupRow, n)
	for i := range rows {
		g := &rows[i]
		g.status, g.version, g.position = statuses[i], versions[i], uint64(positions[i])
		if len(ex[i]) == 0 || string(ex[i]) == "null" {
			continue
		}
		// [dup_index, dup_version, other_id, other_stream], as written
		// by append_batch.
		var parts []json.RawMessage
		var otherID, otherStream *string
		err := json.Unmarshal(ex[i], &parts)
		if err == nil && len(parts) != 4 {
			err = fmt.Errorf("%d fields, want 4", len(parts))
		}
		if err == nil {
			err = errors.Join(json.Unmarshal(parts[0], &g.dupIndex), json.Unmarshal(parts[1], &g.dupVersion),
				json.Unmarshal(parts[2], &otherID), json.Unmarshal(parts[3], &otherStream))
		}
		if err != nil {
			return nil, false, fmt.Errorf("postgres: append: outcome row of group %d: %w", token, err)
		}
		if otherID != nil {
			g.otherID = pgtype.Text{String: *otherID, Valid: true}
		}
		if otherStream != nil {
			g.otherStream = pgtype.Text{String: *otherStream, Valid: true}
		}
	}
	return rows, true, nil
}

// statementError reports whether err is the server refusing a statement
// (severity ERROR): the server's session goes on, and in a transaction
// everything the statement did is undone. FATAL and PANIC end the
// session, and are not statement errors.
func statementError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	sev := pgErr.SeverityUnlocalized
	if sev == "" {
		sev = pgErr.Severity
	}
	return sev == "ERROR"
}
