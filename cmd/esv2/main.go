package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/esv2/esv2/eventstore"
)

// Exit statuses, documented in the package comment and in --help.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed (database error, I/O, bad data)
	exitUsage    = 2 // bad flags or arguments
	exitNotFound = 3 // the stream, snapshot or subscription does not exist
	exitProblems = 4 // verify found broken invariants
	exitOpen     = 5 // the store could not be opened (missing file, not a database, unreachable DSN, schema version)
)

const exitHelp = `Exit status:
  0  success
  1  the command failed (database error, I/O error, bad input data)
  2  bad flags or arguments
  3  not found (stream, snapshot, subscription, parked event)
  4  verify found broken invariants
  5  the store could not be opened (missing file, not an SQLite database,
     unreachable or refused DSN, unusable schema version)`

// statusError carries an exit status with an error.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &statusError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status; main and
// the tests call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// SIGINT and SIGTERM cancel the context: tail ends cleanly, import
	// stops between batches, everything else stops its query.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitStatus(err)
	if !errors.Is(err, errProblems) {
		fmt.Fprintf(stderr, "esv2: %v\n", err)
	}
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'esv2 --help' or 'esv2 COMMAND --help' for usage.")
	}
	return code
}

// errProblems is returned by verify when it found broken invariants,
// which it has already printed.
var errProblems = errors.New("verify found broken invariants")

func exitStatus(err error) int {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, errProblems):
		return exitProblems
	case errors.Is(err, eventstore.ErrNotFound):
		return exitNotFound
	case strings.HasPrefix(err.Error(), "unknown command "):
		return exitUsage // cobra's, for a mistyped subcommand
	}
	return exitFailure
}

// app holds the global flags and the streams of one run.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	db, dsn, schema string
	json            bool
	quiet           bool
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "esv2",
		Short: "Inspect, follow, move, check and operate an esv2 event store",
		Long: `esv2 looks into an esv2 event store and operates it from the shell.

Connect with --db FILE for an SQLite store, or with --dsn URL (or the
ESV2_DSN environment variable) and --schema for a PostgreSQL store.
Commands that only read open the store read-only, and refuse a missing
SQLite file rather than create one.

Tables are for people; --json prints one JSON object per line for scripts.
Times are RFC 3339, in UTC. Event data is shown as JSON whether it was
stored as JSON or msgpack (esv2's default encoding); other bytes are shown
as base64 ("encoding" says which).

` + exitHelp,
		Example: `  esv2 --db app.db streams --prefix order-
  esv2 --db app.db read order-42
  esv2 --db app.db read '$all' --type OrderPlaced --limit 10 --json
  esv2 --db app.db tail '$all'
  esv2 export --db app.db | esv2 import --dsn postgres://localhost/app
  esv2 --dsn postgres://localhost/app verify`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.db, "db", "", "SQLite database `FILE` of the store")
	pf.StringVar(&a.dsn, "dsn", "", "PostgreSQL connection `URL` of the store (default $ESV2_DSN)")
	pf.StringVar(&a.schema, "schema", "", "PostgreSQL `SCHEMA` of the store (default \"esv2\")")
	pf.BoolVar(&a.json, "json", false, "print one JSON object per line instead of a table")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "no progress bar, even on a terminal")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &statusError{code: exitUsage, err: err}
	})
	root.AddCommand(
		a.streamsCommand(),
		a.infoCommand(),
		a.readCommand(),
		a.statsCommand(),
		a.snapshotsCommand(),
		a.exportCommand(),
		a.importCommand(),
		a.verifyCommand(),
		a.migrateCommand(),
		a.tailCommand(),
		a.subscriptionsCommand(),
		a.deleteCommand(),
		a.truncateCommand(),
		a.purgeCommand(),
	)
	return root
}

// args checks the number of positional arguments, as a usage error.
func args(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < lo || len(a) > hi {
			switch {
			case hi == 0:
				return usageErr("%s takes no arguments", cmd.CommandPath())
			case lo == hi:
				return usageErr("%s takes %d argument(s), got %d", cmd.CommandPath(), lo, len(a))
			}
			return usageErr("%s takes %d to %d arguments, got %d", cmd.CommandPath(), lo, hi, len(a))
		}
		return nil
	}
}
